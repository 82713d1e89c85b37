"""A real local HTTP server acting as an n8n-style agent webhook (SSE or JSON answers)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from tests.support.env import bound_port


@dataclass
class WebhookScript:
    """How the agent answers."""

    mode: Literal["sse", "json", "n8n-list", "bad-json", "sse-no-done", "no-content"] = "sse"
    parts: list[str] = field(default_factory=lambda: ["Agent ", "says ", "hi"])
    hold: asyncio.Event | None = None  # answer only once this is set (the client waits meanwhile)
    status: int = 200
    error_message: str | None = None  # non-200: an OpenAI-style error body with this message


class FakeWebhook:
    def __init__(self, token: str | None = "hook-secret") -> None:
        self.token = token
        self.script = WebhookScript()
        self.requests: list[dict[str, Any]] = []
        self.auth_headers: list[str | None] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook/agent"

    async def start(self) -> FakeWebhook:
        app = web.Application()
        app.router.add_post("/webhook/agent", self._hook)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = bound_port(self._runner)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        self.auth_headers.append(request.headers.get("Authorization"))
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"message": "Authorization data is wrong!"}, status=403)
        body = await request.json()
        self.requests.append(body)
        script = self.script
        if script.hold is not None:
            await script.hold.wait()
        if script.status != 200:
            if script.error_message is not None:
                return web.json_response({"error": {"message": script.error_message}}, status=script.status)
            return web.json_response({"message": "workflow failed"}, status=script.status)
        text = "".join(script.parts)
        if script.mode == "json":
            return web.json_response({"content": text})
        if script.mode == "n8n-list":
            return web.json_response([{"output": text}])
        if script.mode == "bad-json":
            return web.Response(text="{not json", content_type="application/json")
        if script.mode == "no-content":
            return web.json_response({"result": "ok"})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for part in script.parts:
            await response.write(f"data: {json.dumps({'content': part})}\n\n".encode())
        if script.mode == "sse":
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
