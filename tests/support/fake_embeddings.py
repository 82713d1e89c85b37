"""A real local HTTP server speaking OpenAI's `/v1/embeddings` protocol.

It embeds each text as a hashed bag of words (deterministic, not unit length, so clients
must normalise), answers in reverse index order (clients must sort), and can be scripted
to fail, hang, or answer malformed or short.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass
class EmbeddingsScript:
    status: int = 200  # non-200: answer this status with an OpenAI-style error body
    retry_after: str | None = None
    hang: float = 0.0  # wait this long before answering
    malformed: bool = False  # answer a body that is not JSON
    drop_last: bool = False  # answer one embedding fewer than asked
    dimensions: int = 8
    change_dimensions_after: int | None = None  # from request N on, vectors are one longer


def bag_of_words(text: str, dimensions: int) -> list[float]:
    """Word counts hashed into `dimensions` buckets, times 3 (never unit length), plus a bias."""
    vector = [0.0] * dimensions
    for word in text.lower().split():
        bucket = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % dimensions
        vector[bucket] += 3.0
    vector[0] += 0.5  # an empty text still has a direction
    return vector


class FakeEmbeddings:
    def __init__(self, *, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.script = EmbeddingsScript()
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str | None] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def start(self) -> FakeEmbeddings:
        app = web.Application()
        app.router.add_post("/v1/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = site._server.sockets  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json()
        self.requests.append(body)
        self.authorizations.append(request.headers.get("Authorization"))
        script = self.script
        if script.hang:
            await asyncio.sleep(script.hang)
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided: sk-secret-in-provider-text", None)
        if script.status != 200:
            return _error(script.status, f"scripted failure {script.status}", script.retry_after)
        if script.malformed:
            return web.Response(text="<html>gateway</html>", content_type="text/html")
        texts: list[str] = body["input"]
        dimensions = script.dimensions
        if script.change_dimensions_after is not None and len(self.requests) > script.change_dimensions_after:
            dimensions += 1
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(text, dimensions)}
            for i, text in enumerate(texts)
        ]
        if script.drop_last:
            data = data[:-1]
        data.reverse()
        answer = {"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1}}
        return web.Response(text=json.dumps(answer), content_type="application/json")


def _error(status: int, message: str, retry_after: str | None) -> web.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    body = {"error": {"message": message, "type": "invalid_request_error", "code": None}}
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/json", headers=headers
    )
