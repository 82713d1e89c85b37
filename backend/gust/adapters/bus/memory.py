"""In-process bus: the default for a single server process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from gust.ports.bus import LoggedEvent


class MemoryBus:
    name = "memory"
    shared = False

    def __init__(self) -> None:
        self._logs: dict[str, list[LoggedEvent]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._active: dict[str, tuple[str, float]] = {}
        self._listeners: list[Callable[[str], Awaitable[None]]] = []
        self._closed = asyncio.Event()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._closed.set()
        for handle in self._expiry.values():
            handle.cancel()
        self._expiry.clear()

    async def ping(self) -> None:
        pass

    async def publish(self, generation_id: str, events: list[LoggedEvent]) -> None:
        self._logs.setdefault(generation_id, []).extend(events)
        changed = self._changed.pop(generation_id, None)
        if changed is not None:
            changed.set()

    async def read(self, generation_id: str, after: int, wait: float) -> list[LoggedEvent]:
        log = self._logs.get(generation_id, [])
        if not log or log[-1][0] <= after:
            changed = self._changed.setdefault(generation_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)
            log = self._logs.get(generation_id, [])
        return [entry for entry in log if entry[0] > after]

    async def expire(self, generation_id: str, ttl: float) -> None:
        old = self._expiry.pop(generation_id, None)
        if old is not None:
            old.cancel()

        def drop() -> None:
            self._logs.pop(generation_id, None)
            self._expiry.pop(generation_id, None)

        self._expiry[generation_id] = asyncio.get_running_loop().call_later(ttl, drop)

    async def set_active(self, chat_id: str, generation_id: str, ttl: float) -> None:
        self._active[chat_id] = (generation_id, time.monotonic() + ttl)

    async def get_active(self, chat_id: str) -> str | None:
        entry = self._active.get(chat_id)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    async def clear_active(self, chat_id: str, generation_id: str) -> None:
        entry = self._active.get(chat_id)
        if entry is not None and entry[0] == generation_id:
            del self._active[chat_id]

    async def request_stop(self, generation_id: str) -> None:
        for listener in list(self._listeners):
            await listener(generation_id)

    async def listen_stops(self, on_stop: Callable[[str], Awaitable[None]]) -> None:
        self._listeners.append(on_stop)
        try:
            await self._closed.wait()
        finally:
            self._listeners.remove(on_stop)
