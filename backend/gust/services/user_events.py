"""A user's live notifications (`GET /api/events`): things that change outside any answer's
stream, e.g. a chat's `title` once it is set after the answer ended.

Each user has a short log on the bus (key `user-events:<user id>`), so a notification
published by the process that titled the chat reaches the process holding the user's
connection (Redis), or the same process (in-memory bus). Sequence numbers are milliseconds
since the epoch, bumped to stay increasing in this process: a client resumes after the last
one it saw (Last-Event-ID), and a new connection starts from now (a log begins with an
`open` marker at seq 1, as the bus starts every log there). The log expires a few
minutes after its last event: it carries notifications, not state (the chat list is the state).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from gust.ports.bus import Bus, LoggedEvent

log = logging.getLogger(__name__)

LOG_TTL = 300.0  # seconds a user's notifications stay readable after the last one


def _key(user_id: str) -> str:
    return f"user-events:{user_id}"


class UserEvents:
    def __init__(self, bus: Bus, *, ttl: float = LOG_TTL) -> None:
        self.bus = bus
        self.ttl = ttl
        self._last = 0
        self.closing = asyncio.Event()

    def now(self) -> int:
        """The sequence number a new connection starts after: everything from now on."""
        return max(self._last, time.time_ns() // 1_000_000)

    async def publish(self, user_id: str, event: Mapping[str, Any]) -> None:
        """Send one notification to every connection of the user (never raises: a lost
        notification only delays what the next list refresh shows)."""
        key = _key(user_id)
        try:
            # Above the log's last event (another process's clock may be ahead of ours).
            seq = max(self._last + 1, time.time_ns() // 1_000_000, await self.bus.last_seq(key) + 1)
            self._last = seq
            if not await self.bus.publish(key, [(seq, event)], ttl=self.ttl):
                # No log yet: the bus starts a log at seq 1 only. Readers start after "now",
                # so they never see this opening marker.
                await self.bus.publish(key, [(1, {"type": "open"}), (seq, event)], ttl=self.ttl)
        except Exception as exc:  # noqa: BLE001 - e.g. the bus is down: the next list refresh catches up
            log.warning("user notification %s not published: %s", event.get("type"), exc)

    async def read(self, user_id: str, after: int, wait: float) -> list[LoggedEvent]:
        """Notifications after `after`, waiting up to `wait` s; [] when closing."""
        if self.closing.is_set():
            return []
        reading = asyncio.ensure_future(self.bus.read(_key(user_id), after, wait))
        closing = asyncio.ensure_future(self.closing.wait())
        try:
            await asyncio.wait({reading, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not reading.done():
                reading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await reading
        return reading.result() if reading.done() and not reading.cancelled() else []

    def close(self) -> None:
        """Shutdown: end every open notification stream now."""
        self.closing.set()
