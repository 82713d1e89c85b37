"""Chats and their messages, always scoped to the owner."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gust.domain.branches import current_branch, sibling_ids
from gust.domain.errors import NotFound, ValidationError
from gust.domain.ids import new_id, now
from gust.domain.models import Chat, Message, User
from gust.ports.store import ChatCursor, Store

DEFAULT_TITLE = "New chat"
MAX_TITLE = 200
MAX_SYSTEM_PROMPT = 20_000
EDITABLE = frozenset({"title", "pinned", "archived", "system_prompt", "model", "agent_id", "tags"})
MAX_TAGS = 20
MAX_TAG = 32
NOT_NULL = frozenset({"title", "pinned", "archived"})  # the others: null clears them


def encode_cursor(chat: Chat) -> str:
    raw = json.dumps([chat.updated_at, chat.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> ChatCursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        updated_at, chat_id = json.loads(raw)
        return float(updated_at), str(chat_id)
    except (ValueError, TypeError, binascii.Error):
        raise ValidationError("cursor is not valid", field="cursor") from None


@dataclass(slots=True)
class ChatView:
    chat: Chat
    branch: list[Message]
    siblings: dict[str, list[str]]


class ChatService:
    def __init__(self, store: Store, check_agent: Callable[[User, str], Awaitable[object]]) -> None:
        self.store = store
        # Raises NotFound unless the agent is one of the user's team (AgentService.get).
        self.check_agent = check_agent

    async def _check_agent(self, user: User, agent_id: str | None) -> None:
        if agent_id is not None:
            await self.check_agent(user, agent_id)

    async def create_chat(
        self,
        user: User,
        *,
        title: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
        agent_id: str | None = None,
    ) -> Chat:
        await self._check_agent(user, agent_id)
        created = now()
        chat = Chat(
            id=new_id(),
            user_id=user.id,
            team_id=user.team_id,
            title=_clean_title(title) if title else DEFAULT_TITLE,
            model=model,
            system_prompt=system_prompt,
            agent_id=agent_id,
            created_at=created,
            updated_at=created,
        )
        await self.store.create_chat(chat)
        return chat

    async def get_chat(self, user: User, chat_id: str) -> Chat:
        chat = await self.store.get_chat(user.id, chat_id)
        if chat is None:
            raise NotFound("chat not found")
        return chat

    async def list_chats(
        self, user: User, *, limit: int, cursor: str | None, archived: bool | None, tag: str | None = None
    ) -> tuple[list[Chat], str | None]:
        after = decode_cursor(cursor) if cursor else None
        wanted = clean_tags([tag])[0] if tag is not None else None
        chats = await self.store.list_chats(
            user.id, limit=limit + 1, after=after, archived=archived, tag=wanted
        )
        more = len(chats) > limit
        chats = chats[:limit]
        return chats, (encode_cursor(chats[-1]) if more and chats else None)

    async def update_chat(self, user: User, chat_id: str, changes: dict[str, Any]) -> Chat:
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValidationError(f"cannot change {sorted(unknown)}", field=sorted(unknown)[0])
        for name in NOT_NULL & set(changes):
            if changes[name] is None:
                raise ValidationError(f"{name} cannot be null", field=name)
        if "title" in changes:
            changes["title"] = _clean_title(changes["title"])
        if "tags" in changes:
            changes["tags"] = clean_tags(changes["tags"] or [])
        await self._check_agent(user, changes.get("agent_id"))
        chat = await self.store.update_chat(user.id, chat_id, {**changes, "updated_at": now()})
        if chat is None:
            raise NotFound("chat not found")
        return chat

    async def delete_chat(self, user: User, chat_id: str) -> None:
        if not await self.store.delete_chat(user.id, chat_id):
            raise NotFound("chat not found")

    async def list_messages(self, user: User, chat_id: str) -> list[Message]:
        await self.get_chat(user, chat_id)
        return await self.store.list_messages(user.id, chat_id)

    async def view(self, user: User, chat_id: str, leaf_id: str | None = None) -> ChatView:
        """A chat with its current branch and every branch message's siblings."""
        chat = await self.get_chat(user, chat_id)
        messages = await self.store.list_messages(user.id, chat_id)
        branch = current_branch(messages, leaf_id)
        siblings = sibling_ids(messages)
        return ChatView(chat=chat, branch=branch, siblings={m.id: siblings[m.id] for m in branch})


def _clean_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise ValidationError("title must not be empty", field="title")
    return title[:MAX_TITLE]


def clean_tags(tags: list[str]) -> list[str]:
    """Tags trimmed, lower-cased and deduplicated (first order kept): at most 20, 1-32 chars."""
    cleaned: list[str] = []
    for raw in tags:
        tag = " ".join(raw.split()).lower()
        if not 1 <= len(tag) <= MAX_TAG:
            raise ValidationError(f"each tag must be 1 to {MAX_TAG} characters", field="tags")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > MAX_TAGS:
        raise ValidationError(f"a chat can have at most {MAX_TAGS} tags", field="tags")
    return cleaned
