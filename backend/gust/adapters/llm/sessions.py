"""One pooled aiohttp session per upstream base URL, created on the running loop."""

from __future__ import annotations

import aiohttp


class SessionPool:
    def __init__(self, *, limit_per_host: int = 0, connect_timeout: float = 10.0) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._limit_per_host = limit_per_host
        self.connect_timeout = connect_timeout

    def get(self, base_url: str) -> aiohttp.ClientSession:
        session = self._sessions.get(base_url)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=0, limit_per_host=self._limit_per_host, ttl_dns_cache=300, enable_cleanup_closed=True
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
                auto_decompress=True,
                trust_env=False,
            )
            self._sessions[base_url] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()
