"""In-process bus: the default for a single server process."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from gust.ports.bus import Beat, LoggedEvent


class MemoryBus:
    name = "memory"
    shared = False

    def __init__(self) -> None:
        self._logs: dict[str, list[LoggedEvent]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}
        self._active: dict[str, tuple[str, float]] = {}
        self._owners: dict[str, float] = {}  # generation id -> deadline (monotonic)
        self._claims: dict[str, float] = {}
        self._stops: dict[str, float] = {}  # pending stop requests (as Redis keeps them)
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

    async def publish(self, generation_id: str, events: list[LoggedEvent], ttl: float | None = None) -> bool:
        log = self._logs.get(generation_id)
        if log is None:
            if events and events[0][0] > 1:
                return False  # the log was dropped: the publisher sends it all again
            log = self._logs[generation_id] = []
        top = log[-1][0] if log else 0
        log.extend(entry for entry in events if entry[0] > top)
        if ttl is not None:
            await self.expire(generation_id, ttl)
        changed = self._changed.pop(generation_id, None)
        if changed is not None:
            changed.set()
        return True

    async def read(self, generation_id: str, after: int, wait: float) -> list[LoggedEvent]:
        log = self._logs.get(generation_id, [])
        if not log or log[-1][0] <= after:
            changed = self._changed.setdefault(generation_id, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), wait)
            log = self._logs.get(generation_id, [])
        return [entry for entry in log if entry[0] > after]

    async def exists(self, generation_id: str) -> bool:
        return bool(self._logs.get(generation_id))

    async def last_seq(self, generation_id: str) -> int:
        log = self._logs.get(generation_id)
        return log[-1][0] if log else 0

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

    async def heartbeat(self, running: list[tuple[str, str]], ttl: float) -> Beat:
        now = time.monotonic()
        beat = Beat()
        for generation_id, chat_id in running:
            self._owners[generation_id] = now + ttl
            self._active[chat_id] = (generation_id, now + ttl)
            if not self._logs.get(generation_id):
                beat.lost.add(generation_id)
            if self._stops.get(generation_id, 0.0) >= now:
                beat.stops.add(generation_id)
        return beat

    async def release(self, generation_id: str) -> None:
        self._owners.pop(generation_id, None)

    async def owned(self, generation_ids: list[str]) -> set[str]:
        now = time.monotonic()
        return {g for g in generation_ids if self._owners.get(g, 0.0) >= now}

    async def claim_reap(self, generation_id: str, ttl: float) -> bool:
        now = time.monotonic()
        if self._claims.get(generation_id, 0.0) >= now:
            return False
        self._claims[generation_id] = now + ttl
        return True

    async def request_stop(self, generation_id: str) -> None:
        now = time.monotonic()
        self._stops = {g: t for g, t in self._stops.items() if t >= now}
        self._stops[generation_id] = now + 120
        for listener in list(self._listeners):
            await listener(generation_id)

    async def listen_stops(self, on_stop: Callable[[str], Awaitable[None]]) -> None:
        self._listeners.append(on_stop)
        try:
            await self._closed.wait()
        finally:
            self._listeners.remove(on_stop)
