"""Store methods for usage reports: token and cost sums of stored answers and of usage
records (API completions that were not saved as chats)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

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


# Where a usage record comes from: "api" = a /v1/chat/completions call not saved as a chat.
UsageSource = Literal["api"]

# The chat id under which earlier versions stored /v1 usage as content-free messages; the
# stores move those into usage records when they start.
LEGACY_API_USAGE_CHAT = "openai-api"


@dataclass(slots=True)
class UsageRecord:
    """Usage that belongs to no stored message: counted in reports like an answer's."""

    id: str
    user_id: str
    team_id: str
    model: str | None
    usage: dict[str, Any]  # {prompt_tokens, completion_tokens, cost?, estimated?}
    created_at: float
    source: UsageSource = "api"


class UsageStore(Store, Protocol):
    """A Store that can sum the `usage` recorded on messages and in usage records."""

    async def add_usage_record(self, record: UsageRecord) -> None:
        """Store one usage record."""

    async def usage_rows(
        self,
        *,
        team_id: str,
        user_id: str | None,
        since: float | None,
        until: float | None,
    ) -> list[UsageRow]:
        """One row per (user, model) over messages that carry usage and usage records,
        created in [since, until); a record counts as one message.

        Always within `team_id`; only `user_id`'s messages unless it is None (the whole team).
        Usage marked `"imported": true` is never counted (it came from an import file).
        """
