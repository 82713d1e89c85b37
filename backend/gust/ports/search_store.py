"""Store methods the search indexer needs: pending records, tombstones, a cursor walk."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from gust.domain.models import Chat, Message
from gust.ports.store import Store

TombstoneKind = Literal["chat", "message"]


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A deleted chat (with all its messages) or message whose documents must leave the index.

    Written in the same transaction as the deletion (SQLite) or before it (MongoDB), so a
    crash cannot lose it; removed once the index has dropped the documents.
    """

    id: str
    kind: TombstoneKind
    target_id: str
    user_id: str
    created_at: float


class SearchStore(Store, Protocol):
    """A Store that also keeps the search index state of chats and messages."""

    async def list_pending_chats(self, *, limit: int) -> list[Chat]:
        """Chats whose index_state is pending, in id order."""

    async def list_pending_messages(self, *, limit: int) -> list[Message]:
        """Final (not streaming) messages whose index_state is pending, in id order."""

    async def count_search_pending(self) -> int:
        """Pending chats plus pending final messages: the indexer's backlog."""

    async def mark_chats_indexed(self, chats: Sequence[Chat]) -> int:
        """Set index_state=indexed on each chat whose title and updated_at still equal the
        given record's (a newer version stays pending); return how many were marked."""

    async def mark_messages_indexed(self, messages: Sequence[Message]) -> int:
        """Set index_state=indexed on each message whose content and status still equal the
        given record's; return how many were marked."""

    async def list_search_tombstones(self, *, limit: int) -> list[Tombstone]:
        """Oldest tombstones first."""

    async def add_search_tombstone(self, tombstone: Tombstone) -> None: ...

    async def clear_search_tombstones(self, ids: Sequence[str]) -> None: ...

    async def walk_chats(self, *, after: str | None, limit: int) -> list[Chat]:
        """Every chat of every user in id order, starting after the id `after` (a cursor)."""

    async def walk_messages(self, *, after: str | None, limit: int) -> list[Message]:
        """Every message of every user in id order, starting after the id `after`."""

    async def existing_chat_ids(self, ids: Collection[str]) -> set[str]:
        """Those of `ids` that are chats in the store."""

    async def existing_message_ids(self, ids: Collection[str]) -> set[str]:
        """Those of `ids` that are messages in the store."""

    async def chat_titles(self, user_id: str, chat_ids: Collection[str]) -> dict[str, str]:
        """Titles of the user's chats among `chat_ids` (others' or missing chats are absent)."""
