"""Sending messages and streaming answers: SSE (or NDJSON) that survives reloads."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from tornado.iostream import IOStream

from gust.handlers.base import APIHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import (
    AcceptedOut,
    MessageListOut,
    MessageOut,
    ModelListOut,
    RegenerateIn,
    SendIn,
    StopOut,
    StreamIn,
)
from gust.handlers.stream_schemas import GENERATION_STREAM
from gust.services.generation import SendOptions

if TYPE_CHECKING:
    from gust.services.follow import AnswerStream, FollowService
    from gust.services.generation import GenerationService

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
STREAM_RESPONSES: dict[int, Any] = {200: GENERATION_STREAM}


def options(body: SendIn | RegenerateIn, message: str = "") -> SendOptions:
    return SendOptions(
        message=getattr(body, "message", message),
        model=body.model,
        parent_id=getattr(body, "parent_id", None),
        new_root="parent_id" in body.model_fields_set and getattr(body, "parent_id", None) is None,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        research=getattr(body, "research", False),
        agent_id=getattr(body, "agent_id", None),
        system_prompt=getattr(body, "system_prompt", None),
        tools=getattr(body, "tools", None),
    )


class StreamingHandler(APIHandler):
    """Writes an answer's events (services/follow.py's AnswerStream) as SSE, or NDJSON."""

    _stream: AnswerStream | None = None

    @property
    def generation(self) -> GenerationService:
        return self.services.generation

    def _ndjson(self) -> bool:
        return NDJSON in self.request.headers.get("Accept", "")

    async def write_stream(self, stream: AnswerStream) -> None:
        """Relay the stream until its last event is sent or the client goes away."""
        self.set_status(200)
        self.set_header("Content-Type", NDJSON if self._ndjson() else SSE + "; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        self._stream = stream
        await stream.run(_Response(self), "ndjson" if self._ndjson() else "sse")
        if not self.request.connection.stream.closed():  # type: ignore[union-attr]
            self.finish()

    def on_connection_close(self) -> None:
        # The connection owned only its subscription, never the generation.
        if self._stream is not None:
            self._stream.close()
        super().on_connection_close()


class _Response:
    """The stream's view of an HTTP response (services.push.Output)."""

    __slots__ = ("handler", "stream")

    def __init__(self, handler: StreamingHandler) -> None:
        self.handler = handler
        self.stream: IOStream = handler.request.connection.stream  # type: ignore[union-attr]

    def send(self, data: bytes) -> asyncio.Future[None] | None:
        if self.stream.closed():
            return None
        self.handler.write(data)
        return self.handler.flush()

    def busy(self) -> bool:
        return self.stream.writing()


class ChatStreamHandler(StreamingHandler):
    api_key_methods = frozenset({"POST"})
    api = {
        "post": Op(
            "Send a message and stream the answer (SSE; creates the chat without chat_id)",
            body=StreamIn,
            responses={**STREAM_RESPONSES, 503: None},
            tags=("streaming",),
        )
    }

    async def post(self) -> None:
        body = self.json_body(StreamIn)
        started = await self.generation.send(self.user, options(body), body.chat_id)
        await self.write_stream(started.stream())


class ChatMessageHandler(StreamingHandler):
    api_key_methods = frozenset({"POST"})
    api = {
        "post": Op(
            "Send a message and wait for the whole answer (non-streaming fallback)",
            body=StreamIn,
            responses={200: MessageOut, 502: None},
            tags=("streaming",),
        )
    }

    async def post(self) -> None:
        body = self.json_body(StreamIn)
        started = await self.generation.send(self.user, options(body), body.chat_id)
        message = await self.generation.wait_answer(self.user, started)
        if message.status == "error" and message.error:
            self.set_status(502)
            self.write_json(
                {"error": {**message.error, "message_id": message.id, "request_id": self.request_id}}, 502
            )
            return
        self.write_json(message.public())


class ChatMessagesHandler(StreamingHandler):
    api_key_methods = frozenset({"GET", "POST"})
    api = {
        "get": Op(
            "Every message of a chat (all branches), oldest first",
            responses={200: MessageListOut},
            tags=("chats",),
        ),
        "post": Op(
            "Send a message; answers 202 at once, follow it with GET .../events",
            body=SendIn,
            responses={202: AcceptedOut, 503: None},
            tags=("streaming",),
        ),
    }

    async def get(self, chat_id: str) -> None:
        messages = await self.chats.list_messages(self.user, chat_id)
        self.write_json({"items": [m.public() for m in messages], "next_cursor": None})

    async def post(self, chat_id: str) -> None:
        body = self.json_body(SendIn)
        started = await self.generation.send(self.user, options(body), chat_id)
        await started.stored()
        self.write_json(started.accepted(), 202)


class RegenerateHandler(StreamingHandler):
    api_key_methods = frozenset({"POST"})
    api = {
        "post": Op(
            "Answer again: a new sibling of an assistant message",
            body=RegenerateIn,
            responses={202: AcceptedOut},
            tags=("streaming",),
        )
    }

    async def post(self, chat_id: str, message_id: str) -> None:
        body = self.json_body(RegenerateIn)
        started = await self.generation.regenerate(self.user, chat_id, message_id, options(body))
        await started.stored()
        self.write_json(started.accepted(), 202)


class StopHandler(StreamingHandler):
    api_key_methods = frozenset({"POST"})
    api = {
        "post": Op(
            "Stop the chat's live answer (from any server process)",
            responses={200: StopOut},
            tags=("streaming",),
        )
    }

    async def post(self, chat_id: str) -> None:
        message_id = await self.generation.stop(self.user, chat_id)
        stopped = message_id is not None
        # generation_id: the deprecated alias of message_id (one release)
        self.write_json({"stopped": stopped, "message_id": message_id, "generation_id": message_id})


class EventsHandler(StreamingHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op(
            "Follow the chat's live answer (SSE); resumes after Last-Event-ID",
            responses=STREAM_RESPONSES,
            tags=("streaming",),
        )
    }

    async def get(self, chat_id: str) -> None:
        header = self.request.headers.get("Last-Event-ID")
        last_event_id = header or self.get_query_argument("last_event_id", None)
        await self.write_stream(await self.follow.follow(self.user, chat_id, last_event_id))

    @property
    def follow(self) -> FollowService:
        return self.services.follow


class ModelsHandler(APIHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op("Models usable right now, and the default", responses={200: ModelListOut}, tags=("models",))
    }

    async def get(self) -> None:
        self.write_json(self.services.models.public())


default_handlers = [
    route("/chat/stream", ChatStreamHandler),
    route("/chat/message", ChatMessageHandler),
    route("/api/chats/{chat_id}/messages", ChatMessagesHandler),
    route("/api/chats/{chat_id}/events", EventsHandler),
    route("/api/chats/{chat_id}/stop", StopHandler),
    route("/api/chats/{chat_id}/messages/{message_id}/regenerate", RegenerateHandler),
    route("/api/models", ModelsHandler),
]
