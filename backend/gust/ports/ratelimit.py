"""The rate-limit counter port: fixed windows that start at a key's first hit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Hit:
    """The outcome of counting one hit against a limit."""

    allowed: bool
    count: int  # hits in the current window, this one included
    retry_after: float  # seconds until the window ends (0 when allowed)


class RateLimiter(Protocol):
    name: str
    # True when the counters are shared by every server process (Redis).
    shared: bool

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def hit(self, key: str, limit: int, window: float) -> Hit:
        """Count a hit on `key`; allowed while the window holds at most `limit` hits.

        A window starts at the first hit of a key and lasts `window` seconds; refused hits
        count too, so hammering does not shorten the wait.
        """

    async def reset(self, key: str) -> None:
        """Forget a key's hits."""
