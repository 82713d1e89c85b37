"""The document store port: everything Gust keeps lives behind this Protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gust.domain.models import Chat, Message, Team, User

# (updated_at, id) of the last chat of a page; the next page starts strictly after it.
ChatCursor = tuple[float, str]


class Store(Protocol):
    """Persistence for users, teams, chats and messages.

    Every read of user data takes the owner's `user_id`: a record of another user
    is reported as absent, never returned. Writes of records are whole-record inserts;
    `changes` mappings name the fields to set. Updating a chat or message sets its
    `index_state` to "pending" (the search indexer picks it up) unless the change sets
    `index_state` itself.
    """

    name: str

    async def start(self) -> None:
        """Connect, migrate the schema and create indexes."""

    async def close(self) -> None:
        """Release connections and threads."""

    async def ping(self) -> None:
        """Raise if the store cannot answer right now."""

    # -- locks -------------------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        """Take (or renew) a named lock for `ttl` seconds; False if someone else holds it."""

    async def release_lock(self, name: str, owner: str) -> None:
        """Release a lock held by `owner` (no-op otherwise)."""

    # -- teams and users -----------------------------------------------------------
    async def create_team(self, team: Team) -> None: ...

    async def get_team(self, team_id: str) -> Team | None: ...

    async def update_team(self, team_id: str, changes: Mapping[str, Any]) -> Team | None:
        """Set fields of a team; None if there is no such team."""

    async def create_user(self, user: User) -> None:
        """Insert a user; raise Conflict if the email is taken."""

    async def get_user(self, user_id: str) -> User | None: ...

    async def get_user_by_email(self, email: str) -> User | None: ...

    async def count_users(self) -> int: ...

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> User | None: ...

    # -- chats -------------------------------------------------------------------
    async def create_chat(self, chat: Chat) -> None: ...

    async def get_chat(self, user_id: str, chat_id: str) -> Chat | None: ...

    async def list_chats(
        self,
        user_id: str,
        *,
        limit: int,
        after: ChatCursor | None = None,
        archived: bool | None = None,
        tag: str | None = None,
    ) -> list[Chat]:
        """Chats newest first (by updated_at, then id), starting after the cursor; with
        `tag`, only chats carrying it."""

    async def update_chat(
        self, user_id: str, chat_id: str, changes: Mapping[str, Any]
    ) -> Chat | None: ...

    async def delete_chat(self, user_id: str, chat_id: str) -> bool:
        """Delete a chat and all its messages; False if it did not exist."""

    # -- messages ----------------------------------------------------------------
    async def create_message(self, message: Message) -> None: ...

    async def get_message(self, user_id: str, message_id: str) -> Message | None: ...

    async def list_messages(self, user_id: str, chat_id: str) -> list[Message]:
        """Every message of a chat (all branches), oldest first."""

    async def update_message(
        self,
        user_id: str,
        message_id: str,
        changes: Mapping[str, Any],
        *,
        if_status: str | None = None,
    ) -> bool:
        """Apply `changes`; with `if_status`, only while the stored status is that one (a
        compare-and-set: the reaper never overwrites an answer its owner just finished).
        True when a message was changed."""

    async def list_messages_by_status(self, status: str, *, limit: int) -> list[Message]:
        """Messages in a status across all users (start-up recovery of `streaming` ones)."""
