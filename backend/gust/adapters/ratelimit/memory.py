"""Rate-limit counters in this process's memory (one server process)."""

from __future__ import annotations

import time

from gust.ports.ratelimit import Hit

_SWEEP_EVERY = 1024  # hits between sweeps of expired windows: memory stays bounded by live keys


class MemoryRateLimiter:
    name = "memory"
    shared = False

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (count, monotonic end of window)
        self._hits = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self._windows.clear()

    async def ping(self) -> None:
        return None

    async def hit(self, key: str, limit: int, window: float) -> Hit:
        now = time.monotonic()
        self._hits += 1
        if self._hits % _SWEEP_EVERY == 0:
            self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        count, ends = self._windows.get(key, (0, 0.0))
        if ends <= now:
            count, ends = 0, now + window
        count += 1
        self._windows[key] = (count, ends)
        if count <= limit:
            return Hit(allowed=True, count=count, retry_after=0.0)
        return Hit(allowed=False, count=count, retry_after=ends - now)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)
