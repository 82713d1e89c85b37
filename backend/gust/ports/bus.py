"""The bus port: what generations share across server processes.

The generation hub keeps each running generation's event log and subscriber queues in
the process that runs it. The bus makes three things reachable from other processes:
the event log (so any process can replay and follow a stream), which generation is
live for a chat, and stop requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

# (sequence number, event) — sequence numbers start at 1 and have no gaps.
LoggedEvent = tuple[int, dict[str, Any]]


class Bus(Protocol):
    name: str
    # True when other processes can see what is published (Redis); False in-process.
    shared: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def publish(self, generation_id: str, events: list[LoggedEvent]) -> None:
        """Append events (in order) to a generation's shared log."""

    async def read(self, generation_id: str, after: int, wait: float) -> list[LoggedEvent]:
        """Events with seq > after; waits up to `wait` s for the first one ([] if none)."""

    async def expire(self, generation_id: str, ttl: float) -> None:
        """Drop the log `ttl` seconds from now (the grace period after a generation ends)."""

    async def set_active(self, chat_id: str, generation_id: str, ttl: float) -> None:
        """Mark the chat's live generation; refreshed by its owner while it runs."""

    async def get_active(self, chat_id: str) -> str | None: ...

    async def clear_active(self, chat_id: str, generation_id: str) -> None:
        """Clear the live mark if it still names this generation."""

    async def request_stop(self, generation_id: str) -> None:
        """Ask whichever process runs the generation to stop it."""

    async def listen_stops(self, on_stop: Callable[[str], Awaitable[None]]) -> None:
        """Call `on_stop(generation_id)` for every stop request until close()."""
