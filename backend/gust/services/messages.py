"""Single messages of a chat: deleting one with what hangs below it, rating answers."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from gust.domain.errors import NotFound, ValidationError
from gust.domain.ids import now
from gust.domain.models import Message, User
from gust.ports.extras_store import ExtrasStore
from gust.services.chats import ChatService
from gust.services.hub import GenerationHub
from gust.services.teams import require_admin

MAX_COMMENT = 2000
STOP_WAIT = 5.0  # seconds to wait for a stopped answer to write its last record


def subtree_ids(messages: list[Message], root_id: str) -> list[str]:
    """The message and all its descendants (an explicit stack: chats can be very deep)."""
    children: dict[str, list[str]] = {}
    for m in messages:
        if m.parent_id is not None:
            children.setdefault(m.parent_id, []).append(m.id)
    found: list[str] = []
    seen: set[str] = set()
    stack = [root_id]
    while stack:
        current = stack.pop()
        if current in seen:  # a corrupt cycle must not loop forever
            continue
        seen.add(current)
        found.append(current)
        stack.extend(children.get(current, ()))
    return found


class MessageService:
    def __init__(self, store: ExtrasStore, chats: ChatService, hub: GenerationHub) -> None:
        self.store = store
        self.chats = chats
        self.hub = hub

    async def _message(self, user: User, chat_id: str, message_id: str) -> tuple[Message, list[Message]]:
        await self.chats.get_chat(user, chat_id)
        messages = await self.store.list_messages(user.id, chat_id)
        target = next((m for m in messages if m.id == message_id), None)
        if target is None:
            raise NotFound("message not found in this chat")
        return target, messages

    async def delete(self, user: User, chat_id: str, message_id: str) -> int:
        """Delete a message and its subtree (siblings stay); a live answer in it is stopped first."""
        _, messages = await self._message(user, chat_id, message_id)
        ids = subtree_ids(messages, message_id)
        doomed = set(ids)
        if any(m.status == "streaming" for m in messages if m.id in doomed):
            live = await self.hub.live_generation_id(chat_id)
            if live is not None:
                await self.hub.stop(chat_id)
                generation = self.hub.generations.get(live)
                if generation is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(generation.finished.wait(), STOP_WAIT)
        count = await self.store.delete_messages(user.id, chat_id, ids)
        await self.store.update_chat(user.id, chat_id, {"updated_at": now()})
        return count

    async def set_feedback(
        self, user: User, chat_id: str, message_id: str, rating: int, comment: str | None
    ) -> Message:
        """Rate an answer: 1 or -1 (with an optional comment); 0 clears the rating."""
        target, _ = await self._message(user, chat_id, message_id)
        if target.role != "assistant":
            raise ValidationError("only answers can be rated", field="message_id")
        feedback: dict[str, Any] | None = None
        if rating != 0:
            text = (comment or "").strip()[:MAX_COMMENT] or None
            feedback = {"rating": rating, "comment": text, "updated_at": now()}
        # The indexer does not need to see a rating: leave index_state as it is.
        await self.store.update_message(
            user.id, message_id, {"feedback": feedback, "index_state": target.index_state}
        )
        target.feedback = feedback
        return target

    async def feedback_counts(self, admin: User) -> dict[str, dict[str, int]]:
        require_admin(admin)
        return await self.store.feedback_counts(admin.team_id)
