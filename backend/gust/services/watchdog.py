"""Liveness watchdog: a process that stopped making progress says so on GET /health.

Two signs, each with a limit (WATCHDOG_LOOP_LAG_S, WATCHDOG_STUCK_STORE_S):
- the event loop is late: a periodic task measures how late it wakes up (a blocked or
  saturated loop serves nothing well);
- a store call hangs: one has been in flight longer than the limit, although every store
  call is bounded by the store's own timeouts, so something below them is stuck.
Either makes /health answer 503 with the reason, so an orchestrator restarts the process.
Checking costs a few arithmetic operations: /health stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

OldestCall = Callable[[], "tuple[str, float] | None"]


class Watchdog:
    def __init__(
        self,
        *,
        loop_lag_limit: float,
        stuck_store_limit: float,
        oldest_store_call: OldestCall | None = None,
        interval: float = 1.0,
    ) -> None:
        self.loop_lag_limit = loop_lag_limit
        self.stuck_store_limit = stuck_store_limit
        self.oldest_store_call = oldest_store_call
        self.interval = interval
        self.last_lag = 0.0
        self._last_tick: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._reported: str | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._tick(), name="watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_tick = loop.time()
        while True:
            await asyncio.sleep(self.interval)
            now = loop.time()
            self.last_lag = max(0.0, now - self._last_tick - self.interval)
            self._last_tick = now
            if self.last_lag > self.loop_lag_limit:
                log.error("event loop was %.1fs late (limit %.1fs)", self.last_lag, self.loop_lag_limit)

    def problems(self) -> list[str]:
        """Why this process should be restarted (empty when it is live)."""
        problems: list[str] = []
        lag = self.last_lag
        if self._last_tick is not None:
            # Not woken up at all yet: the loop is late by at least this much right now.
            lag = max(lag, asyncio.get_running_loop().time() - self._last_tick - self.interval)
        if lag > self.loop_lag_limit:
            problems.append(f"event loop {lag:.1f}s late (limit {self.loop_lag_limit:g}s)")
        oldest = self.oldest_store_call() if self.oldest_store_call is not None else None
        if oldest is not None and oldest[1] > self.stuck_store_limit:
            operation, age = oldest
            problems.append(
                f"store call {operation} in flight for {age:.1f}s (limit {self.stuck_store_limit:g}s)"
            )
        reason = "; ".join(problems) or None
        if reason != self._reported:
            if reason:
                log.error("liveness failing: %s", reason)
            elif self._reported:
                log.warning("liveness restored")
            self._reported = reason
        return problems
