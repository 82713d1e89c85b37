"""Store methods for usage reports: token and cost sums of stored answers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gust.ports.store import Store


@dataclass(slots=True)
class UsageRow:
    """Sums over the answers of one user with one model."""

    user_id: str
    model: str | None
    messages: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    estimated_messages: int = 0  # answers whose usage was estimated, not reported by the provider


class UsageStore(Store, Protocol):
    """A Store that can sum the `usage` recorded on messages."""

    async def usage_rows(
        self,
        *,
        team_id: str,
        user_id: str | None,
        since: float | None,
        until: float | None,
    ) -> list[UsageRow]:
        """One row per (user, model) over messages that carry usage, created in [since, until).

        Always within `team_id`; only `user_id`'s messages unless it is None (the whole team).
        Usage marked `"imported": true` is never counted (it came from an import file).
        """
