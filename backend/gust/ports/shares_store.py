"""Store methods for share links: read-only snapshots of a chat's branch, one live link per chat."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from gust.ports.store import Store


@dataclass(slots=True)
class Share:
    """A snapshot of a chat as it was when shared: later messages never appear in it.

    `id` is the unguessable public id of the link (gust.domain.ids.new_token); `messages`
    holds the public fields of the branch's messages, copied at sharing time.
    """

    id: str
    chat_id: str
    user_id: str
    team_id: str
    title: str
    model: str | None
    created_at: float
    messages: list[dict[str, Any]] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        from gust.domain.models import iso

        return {
            "id": self.id,
            "title": self.title,
            "model": self.model,
            "created_at": iso(self.created_at),
            "messages": self.messages,
        }


class SharesStore(Store, Protocol):
    """A Store that keeps share snapshots."""

    async def put_share(self, share: Share) -> Share | None:
        """Store `share` as its chat's link, replacing (and returning) the previous one, if any."""
        ...

    async def get_share(self, share_id: str) -> Share | None:
        """The share with this public id (None when unknown or revoked)."""
        ...

    async def get_chat_share(self, user_id: str, chat_id: str) -> Share | None:
        """The live share of one of `user_id`'s chats."""
        ...

    async def delete_chat_share(self, user_id: str, chat_id: str) -> bool:
        """Revoke the link of one of `user_id`'s chats; False when there was none."""
        ...
