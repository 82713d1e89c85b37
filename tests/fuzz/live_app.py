"""The real app on an ephemeral port, served from a thread of its own for synchronous clients.

Schemathesis drives its requests from synchronous Hypothesis tests (`requests`), so the app
cannot share the test's event loop: it gets a loop on a background thread, exactly as
`tests/conftest.py` starts it otherwise (embedded store and search, the fake LLM upstream).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.fake_upstream import FakeUpstream

T = TypeVar("T")
PASSWORD = "correct horse 1"


@dataclass
class Account:
    email: str
    token: str
    user_id: str
    team_id: str


@dataclass
class LiveApp:
    """Start with `LiveApp.start(tmp)`, stop with `.stop()`; `run()` runs a coroutine on its loop."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    running: RunningApp | None = None
    upstream: FakeUpstream | None = None
    accounts: dict[str, Account] = field(default_factory=dict)

    @classmethod
    def start(cls, directory: Path, **overrides: Any) -> LiveApp:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="live-app", daemon=True)
        thread.start()
        live = cls(loop, thread)
        live.run(live._start(directory, overrides))
        return live

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.url

    @property
    def app(self) -> RunningApp:
        assert self.running is not None
        return self.running

    async def _start(self, directory: Path, overrides: dict[str, Any]) -> None:
        self.upstream = await FakeUpstream().start()
        values: dict[str, Any] = {
            "models_file": self.upstream.models_file(directory),
            "access_token_ttl": 3600,
            **overrides,
        }
        self.running = await start_app(make_settings(directory / "data", **values))

    def sign_up(self, name: str, email: str) -> Account:
        """Register and log in (the first account of an instance is its admin)."""
        account = self.run(self._sign_up(email))
        self.accounts[name] = account
        return account

    async def _sign_up(self, email: str) -> Account:
        async with aiohttp.ClientSession() as http:
            body = {"email": email, "password": PASSWORD}
            async with http.post(self.url + "/api/auth/register", json=body) as resp:
                assert resp.status == 201, await resp.text()
            async with http.post(self.url + "/api/auth/login", json=body) as resp:
                assert resp.status == 200, await resp.text()
                token = (await resp.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get(self.url + "/api/auth/me", headers=headers) as resp:
                me = await resp.json()
        return Account(email, token, me["id"], me["team_id"])

    def stop(self) -> None:
        async def _stop() -> None:
            if self.running is not None:
                await self.running.stop()
            if self.upstream is not None:
                await self.upstream.stop()

        try:
            self.run(_stop(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
