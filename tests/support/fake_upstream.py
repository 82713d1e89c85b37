"""A real local HTTP server speaking OpenAI's streaming chat-completions protocol.

Tests script its behaviour (tokens, pace, reasoning, usage, failures, hangs) and read
what it saw (request bodies, clients that hung up mid-stream).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.env import bound_port

DEFAULT_TOKENS = ["Hello", ", ", "wörld", " — ", "ünïcödé", " ✓", " 你好", "!"]


@dataclass
class Script:
    """How the fake answers. `tokens=None` answers with DEFAULT_TOKENS."""

    tokens: list[str] | None = None
    reasoning: list[str] = field(default_factory=list)
    delay: float = 0.0  # seconds between chunks
    first_token_delay: float = 0.0
    pause_after: int | None = None  # after N content chunks, fall silent for `pause` seconds
    pause: float = 0.0
    include_usage: bool = True
    finish_reason: str = "stop"
    status: int = 200  # non-200: answer this status with an OpenAI-style error body
    retry_after: str | None = None
    error_message: str | None = None  # the error body's message (default: "scripted failure N")
    error_after: int | None = None  # send an OpenAI-style error event after N content chunks
    close_after: int | None = None  # drop the connection after N content chunks (no [DONE])
    malformed_after: int | None = None  # send a line of broken JSON after N content chunks
    hang_after: int | None = None  # stop sending (connection open) after N content chunks
    split_utf8: bool = False  # write each chunk in two TCP writes, splitting multi-byte characters
    echo: bool = False  # answer with the JSON of the messages received
    extra_choices: bool = False  # add a stray choice with index 1 to every chunk
    empty_choices: bool = False  # first send a chunk with "choices": [] (Azure's prompt-filter chunk)
    usage_in_choice: bool = False  # usage inside the last choice (Moonshot), not at the top level
    stamp: bool = False  # add the send time to every chunk as "t" (for benchmarks)
    plain_text: str | None = None  # the reply to non-streaming requests (e.g. titles), if not tokens


class FakeUpstream:
    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.script = Script()
        self.scripts: dict[str, Script] = {}  # by requested model id
        self.requests: list[dict[str, Any]] = []  # streaming requests (the chat answers)
        self.plain_requests: list[dict[str, Any]] = []  # non-streaming ones (e.g. titles)
        self.disconnects = 0
        self.completed = 0
        self.on_request: Callable[[dict[str, Any]], None] | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self, port: int = 0) -> FakeUpstream:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = bound_port(self._runner)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def models_file(self, directory: Path, models: list[str] | None = None, **entry: Any) -> Path:
        """A MODELS_FILE declaring models served by this fake."""
        path = directory / "models.json"
        items = [
            {"id": m, "provider": "openai", "base_url": self.url, "context_window": 8192, **entry}
            for m in (models or ["fake-model"])
        ]
        path.write_text(json.dumps({"models": items}))
        return path

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "Invalid API key", "type": "auth"}}, status=401)
        body = await request.json()
        (self.requests if body.get("stream") else self.plain_requests).append(body)
        if self.on_request is not None:
            self.on_request(body)
        script = self.scripts.get(body.get("model"), self.script)
        if script.status != 200:
            headers = {"Retry-After": script.retry_after} if script.retry_after else None
            return web.json_response(
                {"error": {"message": script.error_message or f"scripted failure {script.status}",
                           "type": "fake"}},
                status=script.status,
                headers=headers,
            )
        if not body.get("stream"):
            text = script.plain_text if script.plain_text is not None else "".join(self._tokens(script, body))
            return web.json_response(
                {
                    "id": "cmpl-fake",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": script.finish_reason,
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split())},
                }
            )
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        try:
            await self._stream(request, response, script, body)
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            self.disconnects += 1
            raise
        return response

    def _tokens(self, script: Script, body: dict[str, Any]) -> list[str]:
        if script.echo:
            return [json.dumps(body.get("messages"), ensure_ascii=False)]
        return list(script.tokens if script.tokens is not None else DEFAULT_TOKENS)

    async def _send(
        self, request: web.Request, response: web.StreamResponse, payload: Any, script: Script
    ) -> None:
        if request.transport is None or request.transport.is_closing():
            raise ConnectionResetError("client went away")
        if isinstance(payload, dict) and script.stamp:
            payload["t"] = time.time()
        data = (
            payload
            if isinstance(payload, bytes)
            else f"data: {json.dumps(payload, ensure_ascii=False)}\n\n".encode()
        )
        if script.split_utf8:
            # Cut inside the first multi-byte character when there is one.
            cut = next((i + 1 for i, b in enumerate(data) if b >= 0xC0), len(data) // 2)
            await response.write(data[:cut])
            await asyncio.sleep(0.005)
            await response.write(data[cut:])
        else:
            await response.write(data)

    async def _stream(
        self, request: web.Request, response: web.StreamResponse, script: Script, body: dict[str, Any]
    ) -> None:
        model = body.get("model")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choices = [{"index": 0, "delta": delta, "finish_reason": finish}]
            if script.extra_choices:
                choices.append({"index": 1, "delta": {"content": "STRAY"}, "finish_reason": None})
            return {"id": "cmpl-fake", "object": "chat.completion.chunk", "model": model, "choices": choices}

        if script.first_token_delay:
            await asyncio.sleep(script.first_token_delay)
        if script.empty_choices:
            empty = {"id": "cmpl-fake", "object": "chat.completion.chunk", "model": model, "choices": [],
                     "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}
            await self._send(request, response, empty, script)
        await self._send(request, response, chunk({"role": "assistant", "content": ""}), script)
        for text in script.reasoning:
            await self._send(request, response, chunk({"reasoning_content": text}), script)
            if script.delay:
                await asyncio.sleep(script.delay)
        tokens = self._tokens(script, body)
        for sent, text in enumerate(tokens):
            if script.close_after is not None and sent >= script.close_after:
                request.transport.close()  # type: ignore[union-attr]
                return
            if script.error_after is not None and sent >= script.error_after:
                message = script.error_message or "scripted mid-stream failure"
                await self._send(request, response, {"error": {"message": message, "type": "fake"}}, script)
                await response.write_eof()
                return
            if script.malformed_after is not None and sent >= script.malformed_after:
                await self._send(
                    request, response, b'data: {"choices": [{"delta": {"content": "x"\n\n', script
                )
                await asyncio.sleep(3600)  # a well-behaved client gives up on its own
            if script.hang_after is not None and sent >= script.hang_after:
                while request.transport is not None and not request.transport.is_closing():
                    await asyncio.sleep(0.02)
                raise ConnectionResetError("client went away while the fake hung")
            await self._send(request, response, chunk({"content": text}), script)
            if script.pause_after is not None and sent + 1 == script.pause_after:
                await asyncio.sleep(script.pause)
            if script.delay:
                await asyncio.sleep(script.delay)
        usage = {"prompt_tokens": 11, "completion_tokens": len(tokens), "total_tokens": 11 + len(tokens)}
        last = chunk({}, script.finish_reason)
        if script.usage_in_choice:
            last["choices"][0]["usage"] = usage
        await self._send(request, response, last, script)
        if script.include_usage and (body.get("stream_options") or {}).get("include_usage"):
            await self._send(
                request,
                response,
                {
                    "id": "cmpl-fake",
                    "object": "chat.completion.chunk",
                    "model": model,
                    "choices": [],
                    "usage": usage,
                },
                script,
            )
        await self._send(request, response, b"data: [DONE]\n\n", script)
        await response.write_eof()
        self.completed += 1
