"""OpenAI-compatible endpoints: `/v1/chat/completions` and `/v1/models` (see services/openai_api.py).

Authenticated by Gust API keys (`Authorization: Bearer gust_...`); every error is in
OpenAI's shape (`{"error": {"message", "type", "param", "code"}}`), so OpenAI's own
clients raise their usual exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator
from typing import Any, cast

import pydantic
import tornado.iostream
import tornado.web

from gust.domain.errors import GustError
from gust.handlers.base import APIHandler, dumps
from gust.handlers.routing import Media, Op, route
from gust.handlers.stream_schemas import COMPLETION
from gust.ports.llm import Chunk
from gust.services.openai_api import (
    Completion,
    CompletionIn,
    OpenAICompatService,
    OpenAIError,
    openai_error_for,
)

log = logging.getLogger("gust.api")

_JSON = "application/json"
_ERRORS: dict[int, type[pydantic.BaseModel] | str | Media | None] = {
    400: _JSON,
    401: _JSON,
    404: _JSON,
    413: _JSON,
    429: _JSON,
    502: _JSON,
    503: _JSON,
}


class OpenAIHandler(APIHandler):
    """Errors in OpenAI's format, whatever raised them."""
    api_key_methods = frozenset({"GET", "POST"})

    @property
    def openai(self) -> OpenAICompatService:
        services = self.services
        service = services.extra.get("openai_api")
        if service is None:
            if services.models is None:
                raise OpenAIError(503, "no models are configured", type="api_error", code="unavailable")
            service = services.extra["openai_api"] = OpenAICompatService(
                services.store,
                services.models,
                services.chats,
                max_message_chars=self.gust_settings.max_message_chars,
                admission=services.generation.admission if services.generation else None,
            )
        return cast(OpenAICompatService, service)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if exc is None or isinstance(exc, tornado.web.HTTPError):
            status = status_code
            error = OpenAIError(status, self._reason, type="invalid_request_error")
        else:
            error = openai_error_for(exc)
            if not isinstance(exc, GustError):
                log.exception("v1 request %s failed", self.request_id, exc_info=exc)
        self.set_status(error.status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            self.set_header("Retry-After", str(int(retry_after)))
        if error.status >= 500:
            self._record_error(exc)
        prepared = self._prepared_future
        if prepared is not None and not prepared.done():
            self.set_header("Connection", "close")
        self.finish(dumps(error.body()))


class ModelsHandler(OpenAIHandler):
    api = {"get": Op("Models (OpenAI-compatible)", responses={200: _JSON, **_ERRORS}, tags=("openai",))}

    async def get(self) -> None:
        self.write_json(self.openai.list_models())


class ChatCompletionsHandler(OpenAIHandler):
    api = {
        "post": Op(
            "Chat completion (OpenAI-compatible; `stream: true` answers server-sent events)",
            body=CompletionIn,
            responses={200: COMPLETION, **_ERRORS},
            tags=("openai",),
        )
    }

    async def post(self) -> None:
        body = self.json_body(CompletionIn)
        save = self.request.headers.get("X-Gust-Save", "").strip().lower() in ("true", "1", "yes")
        service = self.openai
        completion = await service.start(self.user, body, save=save)
        async with service.admitted(self.user):
            await self._complete(service, completion, body)

    async def _complete(
        self, service: OpenAICompatService, completion: Completion, body: CompletionIn
    ) -> None:
        """One completion, JSON or streamed, inside its admission."""
        if not body.stream:
            async for _ in service.chunks(completion):
                pass
            await service.finish(completion)
            if completion.chat_id:
                self.set_header("X-Gust-Chat-Id", completion.chat_id)
            self.write_json(service.response(completion))
            return
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = service.chunks(completion)
        # The first chunk comes before any byte is sent: an upstream refusal is a plain error.
        try:
            first = await anext(chunks, None)
        except BaseException:
            await chunks.aclose()
            raise
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")
        # A task, so a client that hangs up cancels it and with it the upstream request.
        self._relay_task = asyncio.ensure_future(
            self._relay(service, completion, chunks, first, include_usage)
        )
        status = "stopped"
        with contextlib.suppress(asyncio.CancelledError, tornado.iostream.StreamClosedError):
            status = await self._relay_task
        await service.finish(completion, status=status)
        if status == "stopped":
            return
        with contextlib.suppress(tornado.iostream.StreamClosedError):
            if status == "complete":
                reason = completion.finish_reason or "stop"
                await self._send(service.chunk(completion, {}, reason, with_usage=include_usage))
                if include_usage:
                    await self._send(service.usage_chunk(completion))
            self.write(b"data: [DONE]\n\n")
            await self.flush()
            self.finish()

    async def _relay(
        self,
        service: OpenAICompatService,
        completion: Completion,
        chunks: AsyncGenerator[Chunk, None],
        first: Chunk | None,
        include_usage: bool,
    ) -> str:
        """Relay the upstream's chunks as OpenAI chunks: "complete", or "error" after an error chunk."""
        async with contextlib.aclosing(chunks):
            role = {"role": "assistant", "content": ""}
            await self._send(service.chunk(completion, role, with_usage=include_usage))
            chunk = first
            try:
                while chunk is not None:
                    if chunk.kind == "delta" and chunk.text:
                        delta = {"content": chunk.text}
                        await self._send(service.chunk(completion, delta, with_usage=include_usage))
                    elif chunk.kind == "reasoning" and chunk.text:
                        delta = {"reasoning_content": chunk.text}
                        await self._send(service.chunk(completion, delta, with_usage=include_usage))
                    elif chunk.kind == "tool_delta" and chunk.tool_deltas:
                        # Client-side tools: the provider's fragments, unchanged.
                        calls = {"tool_calls": chunk.tool_deltas}
                        await self._send(service.chunk(completion, calls, with_usage=include_usage))
                    chunk = await anext(chunks, None)
            except (asyncio.CancelledError, tornado.iostream.StreamClosedError):
                raise
            except Exception as exc:
                # Mid-stream failure: OpenAI's clients raise on a chunk carrying `error`.
                if not isinstance(exc, GustError):
                    log.exception("v1 stream %s failed", self.request_id)
                await self._send(openai_error_for(exc).body())
                return "error"
        return "complete"

    def on_connection_close(self) -> None:
        task = getattr(self, "_relay_task", None)
        if task is not None:
            task.cancel()
        super().on_connection_close()

    async def _send(self, payload: dict[str, Any]) -> None:
        self.write(
            b"data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
        )
        await self.flush()


default_handlers = [
    route("/v1/models", ModelsHandler),
    route("/v1/chat/completions", ChatCompletionsHandler),
]
