"""The bus port: what generations share across server processes.

The generation hub keeps each running generation's event log and subscriber queues in
the process that runs it. The bus makes reachable from other processes: the event log
(so any process can replay and follow a stream), which generation is live for a chat,
who owns each running generation (a heartbeat, so a dead owner can be reaped), and stop
requests.

A shared bus can lose its server for a while, and with it (no persistence) every log.
Its calls then raise `BusUnavailable`; callers retry with backoff, and the adapter logs
one line when the outage starts and one when it ends, not one per failed call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# (sequence number, event) — sequence numbers start at 1 and have no gaps.
LoggedEvent = tuple[int, Mapping[str, Any]]


class BusUnavailable(Exception):
    """The bus's server cannot be reached (already logged by the adapter, once per outage)."""


@dataclass(slots=True)
class Beat:
    """What an owner's heartbeat learned about its running generations."""

    lost: set[str] = field(default_factory=set)  # logs missing from the bus: republish them
    stops: set[str] = field(default_factory=set)  # stop requests waiting for them


class Bus(Protocol):
    name: str
    # True when other processes can see what is published (Redis); False in-process.
    shared: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def publish(self, generation_id: str, events: list[LoggedEvent], ttl: float | None = None) -> bool:
        """Append events (in order) to a generation's shared log; keep it `ttl` s (None: while running).

        Events already in the log are skipped (a retried publish adds nothing twice).
        False, and nothing appended, when the first event's seq is above 1 but the log is
        gone (the bus lost it): the caller publishes the whole log again from seq 1.
        """

    async def read(self, generation_id: str, after: int, wait: float) -> list[LoggedEvent]:
        """Events with seq > after; waits up to `wait` s for the first one ([] if none)."""

    async def exists(self, generation_id: str) -> bool:
        """Whether the generation's log is on the bus."""

    async def last_seq(self, generation_id: str) -> int:
        """The seq of the log's last event (0 when the log is empty or gone)."""

    async def expire(self, generation_id: str, ttl: float) -> None:
        """Drop the log `ttl` seconds from now (the grace period after a generation ends)."""

    async def set_active(self, chat_id: str, generation_id: str, ttl: float) -> None:
        """Mark the chat's live generation; refreshed by its owner while it runs."""

    async def get_active(self, chat_id: str) -> str | None: ...

    async def clear_active(self, chat_id: str, generation_id: str) -> None:
        """Clear the live mark if it still names this generation."""

    async def heartbeat(self, running: list[tuple[str, str]], ttl: float) -> Beat:
        """For each running (generation_id, chat_id) of this process: mark it owned and live for `ttl` s.

        Also reports logs the bus lost and stop requests that a lost message may have missed.
        """

    async def release(self, generation_id: str) -> None:
        """The generation ended: drop its owner mark."""

    async def owned(self, generation_ids: list[str]) -> set[str]:
        """Those of the generations whose owner's heartbeat is current."""

    async def claim_reap(self, generation_id: str, ttl: float) -> bool:
        """True for exactly one caller: that one reaps the generation of a dead owner."""

    async def request_stop(self, generation_id: str) -> None:
        """Ask whichever process runs the generation to stop it."""

    async def listen_stops(self, on_stop: Callable[[str], Awaitable[None]]) -> None:
        """Call `on_stop(generation_id)` for every stop request until close() (reconnecting)."""
