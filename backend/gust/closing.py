"""Bounded close steps: shutdown ends in time even when a client below never answers.

Every resource of the runtime is closed by one step of its AsyncExitStack, in reverse
order of start. A step that does not finish within its share of the close budget is
cancelled and left behind with a log line naming it; one that fails is logged. Either way
the next step runs, so a store that is unreachable (each call waiting out its own timeout)
cannot hold the process past SHUTDOWN_TIMEOUT + SHUTDOWN_FORCE_AFTER.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# Kept for every step still to run when an earlier one is slow (seconds); when the budget
# is too short for that, each step gets an equal share of what is left.
STEP_RESERVE = 0.25
MIN_STEP = 0.01


class CloseBudget:
    """Time for the close steps of one runtime, shared among them.

    `start(seconds)` fixes the deadline (the runtime does so when its closing begins, if
    the caller has not: e.g. main() counts from the signal). A step gets what is left but
    STEP_RESERVE for each step after it (at least an equal share), at most `step_limit`:
    the steps together never outlast the deadline.
    """

    def __init__(self, total: float, *, step_limit: float) -> None:
        self.total = total
        self.step_limit = step_limit
        self.deadline: float | None = None
        self.pending = 0  # steps registered and not run yet
        self.unfinished: list[str] = []  # steps cut off or failed (the log names them too)

    def start(self, seconds: float | None = None) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + (self.total if seconds is None else seconds)

    def remaining(self) -> float:
        if self.deadline is None:
            return self.total
        return max(0.0, self.deadline - time.monotonic())

    def _timeout(self) -> float:
        remaining = self.remaining()
        fair = remaining / max(self.pending, 1)
        generous = remaining - STEP_RESERVE * max(self.pending - 1, 0)
        return max(MIN_STEP, min(self.step_limit, max(fair, generous)))

    def step(self, name: str, close: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """A callback for AsyncExitStack.push_async_callback that runs `close` bounded."""
        self.pending += 1

        async def run() -> None:
            timeout = self._timeout()
            self.pending -= 1
            await self._bounded(name, close, timeout)

        return run

    async def _bounded(self, name: str, close: Callable[[], Awaitable[object]], limit: float) -> None:
        log.debug("shutdown: closing %s (at most %.2fs)", name, limit)
        task = asyncio.ensure_future(close())
        try:
            done, _ = await asyncio.wait({task}, timeout=limit)
        finally:
            if not task.done():
                task.cancel()  # not awaited: a client that ignores cancellation must not hold us
                task.add_done_callback(_retrieve)
        if not done:
            self.unfinished.append(name)
            log.warning("shutdown: closing %s did not finish within %.1fs; going on without it",
                        name, limit)
            return
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.unfinished.append(name)
            log.warning("shutdown: closing %s failed: %s", name, exc)


async def cancel_task(task: asyncio.Task[object]) -> None:
    """Close step of a background task: cancel it and wait for it to end."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _retrieve(task: asyncio.Future[object]) -> None:
    """Read the outcome of a step left behind, so asyncio does not log it as never retrieved."""
    if not task.cancelled():
        task.exception()
