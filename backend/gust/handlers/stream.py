"""Sending messages and streaming answers: SSE (or NDJSON) that survives reloads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from tornado.iostream import IOStream, StreamClosedError

from gust.domain.errors import NotFound
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
from gust.services.events import Event, Format
from gust.services.follow import stored_ending
from gust.services.generation import SendOptions, Started

if TYPE_CHECKING:
    from gust.services.generation import GenerationService
    from gust.services.hub import GenerationHub, Subscriber

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
    )


def accepted(started: Started) -> dict[str, Any]:
    return {
        "chat_id": started.chat.id,
        "message_id": started.assistant_message.id,
        "user_message_id": started.user_message.id if started.user_message else None,
        "generation_id": started.generation.id,
    }


class StreamingHandler(APIHandler):
    """Writes a generation's events as SSE (default) or NDJSON, one flush per batch."""

    _consumer: asyncio.Future[None] | None = None
    _subscriber: Subscriber | None = None

    @property
    def generation(self) -> GenerationService:
        return self.services.generation

    @property
    def hub(self) -> GenerationHub:
        return self.generation.hub

    def _ndjson(self) -> bool:
        return NDJSON in self.request.headers.get("Accept", "")

    def start_stream(self) -> None:
        self.set_status(200)
        self.set_header("Content-Type", NDJSON if self._ndjson() else SSE + "; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")

    async def write_batches(self, batches: AsyncIterator[list[Event]]) -> None:
        """Relay batches until `done` or until the client goes away (then stop quietly)."""
        ndjson = self._ndjson()
        ping = b'{"type":"ping"}\n' if ndjson else b": ping\n\n"
        self._consumer = asyncio.ensure_future(self._relay(batches, ndjson, ping))
        with contextlib.suppress(asyncio.CancelledError, StreamClosedError):
            await self._consumer

    async def _relay(self, batches: AsyncIterator[list[Event]], ndjson: bool, ping: bytes) -> None:
        async with contextlib.aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                if not batch:
                    self.write(ping)
                elif ndjson:
                    self.write(b"".join([e.ndjson() for e in batch]))
                else:
                    self.write(b"".join([e.sse() for e in batch]))
                await self.flush()

    def on_connection_close(self) -> None:
        # The connection owned only its subscription, never the generation.
        if self._consumer is not None:
            self._consumer.cancel()
        if self._subscriber is not None:
            self._subscriber.close()
        super().on_connection_close()

    async def stream_generation(
        self, generation_id: str, after: int = 0, *, fresh: bool = False, message_id: str | None = None
    ) -> None:
        """Stream a generation's events after `after`; `fresh`: this request just started it;
        `message_id`: the answer it writes when that is not its own id (a continuation)."""
        self.start_stream()
        fmt: Format = "ndjson" if self._ndjson() else "sse"
        subscriber = self.hub.attach(generation_id, after, _Response(self), fmt)
        if subscriber is None:  # run by another process: follow it through the bus
            # The headers at once: the bus may be slow to answer (or reconnecting).
            self.flush()
            store, user_id, stored_id = self.services.store, self.user.id, message_id or generation_id
            batches = self.hub.subscribe(generation_id, after, lambda: store.get_message(user_id, stored_id))
            await self.write_batches(batches)
        else:
            self._subscriber = subscriber
            if subscriber.sent == after and not subscriber.done.done() and not fresh:
                # The headers now, so the client knows the stream is open (a fresh
                # generation's `start` event, logged at once, carries them instead).
                self.flush()
            await subscriber.done
        if not self.request.connection.stream.closed():  # type: ignore[union-attr]
            self.finish()


class _Response:
    """The hub's view of a streaming response (services.hub.Output)."""

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
        await self.stream_generation(started.generation.id, fresh=True)


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
        await started.generation.finished.wait()
        message = await self.services.store.get_message(self.user.id, started.assistant_message.id)
        if message is None:  # deleted while answering
            raise NotFound("the chat was deleted while answering")
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
        self.write_json(accepted(started), 202)


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
        self.write_json(accepted(started), 202)


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
        generation_id = await self.generation.stop(self.user, chat_id)
        self.write_json({"stopped": generation_id is not None, "generation_id": generation_id})


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
        await self.chats.get_chat(self.user, chat_id)
        store = self.services.store
        generation_id, after = _parse_last_event_id(
            self.request.headers.get("Last-Event-ID") or self.get_query_argument("last_event_id", None)
        )
        message = await store.get_message(self.user.id, generation_id) if generation_id else None
        live = await self.hub.live_generation_id(chat_id)
        if generation_id is not None and generation_id == live:
            pass  # following the live answer (a continuation's id is not a message id)
        elif message is None or message.chat_id != chat_id:
            # No usable Last-Event-ID: the live answer, else the latest one, from its start.
            after = 0
            generation_id = live
            if generation_id is None:
                answers = [
                    m for m in await store.list_messages(self.user.id, chat_id) if m.role == "assistant"
                ]
                message = answers[-1] if answers else None
                # A continued answer was last written by another generation than its id.
                generation_id = (message.generation_id or message.id) if message else None
        if generation_id is not None and (
            message is None or generation_id not in (message.id, message.generation_id)
        ):
            message = await store.get_message(self.user.id, generation_id)
            if message is None:  # a continuation: the answer it writes carries its id
                message = next(
                    (m for m in await store.list_messages(self.user.id, chat_id)
                     if m.generation_id == generation_id),
                    None,
                )
        streaming = message is None or message.status == "streaming"
        if generation_id is not None and await self.hub.followable(generation_id, streaming=streaming):
            await self.stream_generation(generation_id, after, message_id=message.id if message else None)
            return
        # The log is gone (past the grace period): the stored text and status are the answer.
        self.start_stream()
        if message is not None:
            for seq, data in enumerate(stored_ending(message), after + 1):
                event = Event(message.id, seq, data)
                self.write(event.ndjson() if self._ndjson() else event.sse())
        self.finish()


class ModelsHandler(APIHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op("Models usable right now, and the default", responses={200: ModelListOut}, tags=("models",))
    }

    async def get(self) -> None:
        self.write_json(self.services.models.public())


def _parse_last_event_id(value: str | None) -> tuple[str | None, int]:
    if not value:
        return None, 0
    generation_id, _, seq = value.rpartition(":")
    if not generation_id or not seq.isdigit() or len(generation_id) > 64:
        return None, 0
    return generation_id, int(seq)


default_handlers = [
    route("/chat/stream", ChatStreamHandler),
    route("/chat/message", ChatMessageHandler),
    route("/api/chats/{chat_id}/messages", ChatMessagesHandler),
    route("/api/chats/{chat_id}/events", EventsHandler),
    route("/api/chats/{chat_id}/stop", StopHandler),
    route("/api/chats/{chat_id}/messages/{message_id}/regenerate", RegenerateHandler),
    route("/api/models", ModelsHandler),
]
