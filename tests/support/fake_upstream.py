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
class ScriptedCall:
    """A function call the fake streams: `arguments` is the raw text the "model" writes
    (it may be malformed on purpose); `name` need not be a tool the request offered."""

    name: str
    arguments: str = "{}"
    call_id: str | None = None  # default: call_<n>, n counted over the fake's lifetime


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
    # Tool calls, streamed after the text tokens in OpenAI's delta format, then finish_reason
    # `tool_finish_reason`. Arguments go out `tool_fragment` characters per fragment; with
    # `interleave` the fragments of parallel calls alternate, as OpenAI streams them.
    tool_calls: list[ScriptedCall] = field(default_factory=list)
    tool_fragment: int = 7
    interleave: bool = True
    tool_finish_reason: str = "tool_calls"
    omit_tool_index: bool = False  # fragments without `index` (some Gemini versions)
    repeat_tool_name: bool = False  # the name in every fragment (some vLLM parsers)
    finish_in_last_fragment: bool = False  # finish_reason on the chunk of the last fragment
    omit_finish: bool = False  # no finish_reason at all: the stream just ends with [DONE]
    # The answer to a request whose last message is a `tool` result. None with tool_calls
    # set: call the tools again, every time (a model that never stops calling tools).
    after_tools: Script | None = None

    @classmethod
    def calling(cls, *calls: ScriptedCall, then: Script | None = None, **options: Any) -> Script:
        """A script that answers only with `calls` (no text), then `then` once given the results."""
        return cls(tokens=[], tool_calls=list(calls), after_tools=then, **options)


class FakeUpstream:
    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.script = Script()
        self.scripts: dict[str, Script] = {}  # by requested model id
        self.requests: list[dict[str, Any]] = []  # streaming requests (the chat answers)
        self.plain_requests: list[dict[str, Any]] = []  # non-streaming ones (e.g. titles)
        self.disconnects = 0
        self.completed = 0
        self.calls_sent = 0  # scripted tool calls streamed so far (numbers the default ids)
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

    def tool_messages(self, request_index: int = -1) -> list[dict[str, Any]]:
        """The `tool` messages of one streaming request received (default: the last)."""
        messages = self.requests[request_index].get("messages") or []
        return [m for m in messages if isinstance(m, dict) and m.get("role") == "tool"]

    def _script_for(self, body: dict[str, Any]) -> Script:
        script = self.scripts.get(str(body.get("model")), self.script)
        messages = body.get("messages") or []
        answered = bool(messages) and isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"
        if answered and script.after_tools is not None:
            return script.after_tools
        return script

    def _call_ids(self, script: Script) -> list[str]:
        ids: list[str] = []
        for call in script.tool_calls:
            ids.append(call.call_id or f"call_{self.calls_sent}")
            self.calls_sent += 1
        return ids

    def _tool_fragments(self, script: Script) -> list[list[dict[str, Any]]]:
        """The `delta.tool_calls` lists to stream, one per chunk."""
        ids = self._call_ids(script)
        step = max(1, script.tool_fragment)
        per_call: list[list[dict[str, Any]]] = []
        for n, (call, call_id) in enumerate(zip(script.tool_calls, ids, strict=True)):
            pieces = [call.arguments[i : i + step] for i in range(0, len(call.arguments), step)] or [""]
            fragments: list[dict[str, Any]] = []
            for i, piece in enumerate(pieces):
                function: dict[str, Any] = {"arguments": piece}
                fragment: dict[str, Any] = {"function": function}
                if i == 0:
                    fragment.update(id=call_id, type="function")
                    function["name"] = call.name
                elif script.repeat_tool_name:
                    function["name"] = call.name
                if not script.omit_tool_index:
                    fragment["index"] = n
                fragments.append(fragment)
            per_call.append(fragments)
        if not script.interleave:
            return [[f] for fragments in per_call for f in fragments]
        out: list[dict[str, Any]] = []
        # Parallel calls: every call's first fragment first, then the rest alternating.
        for round_ in range(max(len(f) for f in per_call) if per_call else 0):
            for fragments in per_call:
                if round_ < len(fragments):
                    out.append(fragments[round_])
        return [[f] for f in out]

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "fake-model", "object": "model"}]})

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return web.json_response({"error": {"message": "Invalid API key", "type": "auth"}}, status=401)
        body = await request.json()
        (self.requests if body.get("stream") else self.plain_requests).append(body)
        if self.on_request is not None:
            self.on_request(body)
        script = self._script_for(body)
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
            message: dict[str, Any] = {"role": "assistant", "content": text}
            finish = script.finish_reason
            if script.tool_calls:
                ids = self._call_ids(script)
                message["content"] = text or None
                message["tool_calls"] = [
                    {"id": i, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c, i in zip(script.tool_calls, ids, strict=True)
                ]
                finish = script.tool_finish_reason
            return web.json_response(
                {
                    "id": "cmpl-fake",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
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
        finish: str | None = script.finish_reason
        finished = False
        if script.tool_calls:
            finish = script.tool_finish_reason
            lists = self._tool_fragments(script)
            for n, fragments in enumerate(lists):
                together = script.finish_in_last_fragment and n == len(lists) - 1
                await self._send(
                    request, response, chunk({"tool_calls": fragments}, finish if together else None), script
                )
                finished = together
                if script.delay:
                    await asyncio.sleep(script.delay)
        usage = {"prompt_tokens": 11, "completion_tokens": len(tokens), "total_tokens": 11 + len(tokens)}
        if not finished and not script.omit_finish:
            last = chunk({}, finish)
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
