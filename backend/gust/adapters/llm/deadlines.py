"""First-token and idle deadlines for a streamed answer, without a timer per chunk.

aiohttp's `sock_read` timeout (and `asyncio.timeout(...).reschedule`) cancels and
re-creates a timer on every network read: a measurable share of the per-chunk cost
when hundreds of answers stream at once. Here a read only stores the time; one timer
per stream wakes at the earliest possible expiry, re-arms itself if data came
meanwhile, and otherwise cancels the reading task, which the adapter turns into an
`upstream_timeout` error (the same pattern as `asyncio.timeout`: cancel, then uncancel).
"""

from __future__ import annotations

import asyncio
from typing import Literal

Expired = Literal["first_token", "idle"]


class Deadlines:
    """Created inside the reading task: it is the task cancelled when a deadline passes."""

    __slots__ = ("_loop", "_task", "_first", "_idle", "_last", "_handle", "_expired")

    def __init__(self, first_token_timeout: float, idle_timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        now = self._loop.time()
        self._first: float | None = now + first_token_timeout  # until the first token
        self._idle = idle_timeout
        self._last = now
        self._expired: Expired | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._arm()

    def touch(self) -> None:
        """Data came from the upstream (called per network read: keep it cheap)."""
        self._last = self._loop.time()

    def first_token(self) -> None:
        self._first = None

    def _expiry(self) -> tuple[float, Expired]:
        idle = self._last + self._idle
        if self._first is not None and self._first < idle:
            return self._first, "first_token"
        return idle, "idle"

    def _arm(self) -> None:
        when, _ = self._expiry()
        self._handle = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        when, kind = self._expiry()
        if self._loop.time() < when:
            self._arm()  # data came since this timer was set
            return
        self._handle = None
        if self._task is not None and not self._task.done():
            self._expired = kind
            self._task.cancel()

    def expired(self) -> Expired | None:
        """Which deadline cancelled the task, if one did and nothing else cancelled it too."""
        if self._expired is None or self._task is None:
            return None
        if self._task.uncancel() > 0:
            return None  # also cancelled by someone else (a stop): that cancel wins
        return self._expired

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
