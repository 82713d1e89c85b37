"""One pooled aiohttp session per upstream base URL, created on the running loop.

Operator-configured providers (DEEPSEEK_API_URL, MODELS_FILE) get plain sessions: a local
Ollama or vLLM is a normal upstream. URLs that users configure (agents' webhooks) get
guarded sessions: their connector is the SSRF guard's (adapters/web/connect.py).
"""

from __future__ import annotations

import aiohttp

from gust.adapters.web.connect import OutboundGuard
from gust.adapters.web.guard import AddressPolicy


class SessionPool:
    def __init__(
        self,
        *,
        limit_per_host: int = 0,
        connect_timeout: float = 10.0,
        guard: OutboundGuard | None = None,
    ) -> None:
        self._sessions: dict[tuple[str, bool], aiohttp.ClientSession] = {}
        self._limit_per_host = limit_per_host
        self.connect_timeout = connect_timeout
        # Fail closed: without a configured guard, guarded sessions use the default policy.
        self.guard = guard or OutboundGuard(AddressPolicy(allowed_ports=None))

    def get(self, base_url: str, *, guarded: bool = False) -> aiohttp.ClientSession:
        key = (base_url, guarded)
        session = self._sessions.get(key)
        if session is None or session.closed:
            connector: aiohttp.TCPConnector
            options = {"limit": 0, "limit_per_host": self._limit_per_host, "enable_cleanup_closed": True}
            if guarded:
                connector = self.guard.connector(**options)
            else:
                connector = aiohttp.TCPConnector(ttl_dns_cache=300, **options)  # type: ignore[arg-type]
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
                auto_decompress=True,
                trust_env=False,  # a proxy from the environment would bypass the guard
            )
            self._sessions[key] = session
        return session

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


