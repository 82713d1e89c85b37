"""aiohttp client for the JSON calls of OAuth sign-in: bounded time and size, no redirects."""

from __future__ import annotations

import json
from collections.abc import Mapping

import aiohttp

from gust import __version__
from gust.ports.http_json import HttpResult, HttpUnavailable

MAX_RESPONSE_BYTES = 1024 * 1024


class AiohttpJson:
    def __init__(self, *, timeout: float = 10.0) -> None:
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Created on first use, on the running loop (a session belongs to its loop).
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, headers={"User-Agent": f"Gust/{__version__}"}
            )
        return self._session

    async def _send(self, method: str, url: str, **kwargs: object) -> HttpResult:
        try:
            async with self._client().request(method, url, allow_redirects=False, **kwargs) as resp:  # type: ignore[arg-type]
                raw = await resp.content.read(MAX_RESPONSE_BYTES + 1)
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise HttpUnavailable(f"{type(exc).__name__} calling {url}") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise HttpUnavailable(f"response of {url} is larger than {MAX_RESPONSE_BYTES} bytes")
        try:
            body = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        return HttpResult(status=status, body=body)

    async def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> HttpResult:
        return await self._send("GET", url, headers={"Accept": "application/json", **(headers or {})})

    async def post_form(
        self, url: str, data: Mapping[str, str], *, headers: Mapping[str, str] | None = None
    ) -> HttpResult:
        return await self._send(
            "POST", url, data=dict(data), headers={"Accept": "application/json", **(headers or {})}
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
