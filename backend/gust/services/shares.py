"""Share links: a read-only snapshot of a chat's current branch at `/s/{share_id}`.

Sharing copies the public fields of the branch's messages into the share record, so the
page shows the chat as it was when shared: later messages, edits and regenerations never
appear. The id is a random token (no enumeration); one live link per chat: sharing again
replaces the snapshot and the old link stops working; revoking deletes it. A share of a
chat that was deleted, or of an owner who was disabled, is gone too.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from gust.domain.errors import NotFound, PayloadTooLarge
from gust.domain.ids import new_token, now
from gust.domain.models import Message, User, iso
from gust.ports.shares_store import Share, SharesStore
from gust.services.chats import ChatService

log = logging.getLogger(__name__)


def snapshot(message: Message) -> dict[str, Any]:
    """What a share shows of a message: never its owner, usage or error details."""
    return {
        "id": message.id,
        "parent_id": message.parent_id,
        "role": message.role,
        "content": message.content,
        "reasoning": message.reasoning,
        "status": message.status,
        "model": message.model,
        "sources": message.sources,
        "created_at": iso(message.created_at),
    }


# A snapshot is one record (one MongoDB document, under its 16 MB limit).
MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024


class ShareService:
    def __init__(
        self, store: SharesStore, chats: ChatService, *, max_bytes: int = MAX_SNAPSHOT_BYTES
    ) -> None:
        self.store = store
        self.chats = chats
        self.max_bytes = max_bytes

    async def share(self, user: User, chat_id: str) -> Share:
        """Snapshot the chat's current branch now (replacing its previous link)."""
        view = await self.chats.view(user, chat_id)
        share = Share(
            id=new_token(),
            chat_id=view.chat.id,
            user_id=user.id,
            team_id=user.team_id,
            title=view.chat.title,
            model=view.chat.model,
            created_at=now(),
            messages=[snapshot(m) for m in view.branch if m.role != "system"],
        )
        size = len(json.dumps(share.messages, ensure_ascii=False).encode())
        if size > self.max_bytes:
            raise PayloadTooLarge(
                f"this chat is too long to share ({size} bytes; at most {self.max_bytes})",
                code="too_long_to_share",
            )
        await self.store.put_share(share)
        log.info("user %s shared chat %s", user.id, view.chat.id)
        return share

    async def current(self, user: User, chat_id: str) -> Share:
        await self.chats.get_chat(user, chat_id)
        share = await self.store.get_chat_share(user.id, chat_id)
        if share is None:
            raise NotFound("this chat is not shared", code="not_shared")
        return share

    async def revoke(self, user: User, chat_id: str) -> None:
        await self.chats.get_chat(user, chat_id)
        if not await self.store.delete_chat_share(user.id, chat_id):
            raise NotFound("this chat is not shared", code="not_shared")
        log.info("user %s revoked the share of chat %s", user.id, chat_id)

    async def read(self, share_id: str) -> Share:
        """A share for anyone with its id; unknown, revoked and orphaned ids look alike."""
        share = await self.store.get_share(share_id) if 16 <= len(share_id) <= 128 else None
        if share is not None:
            owner = await self.store.get_user(share.user_id)
            chat = await self.store.get_chat(share.user_id, share.chat_id) if owner else None
            if owner is None or owner.disabled or chat is None:
                share = None
        if share is None:
            raise NotFound("this share link does not exist or was revoked")
        return share

