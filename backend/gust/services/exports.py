"""Export: one chat as Markdown or JSON, or all of a user's chats as a streamed ZIP.

The JSON document of a chat (format "gust.chat", version 1) is what POST /api/import reads
back (services/imports.py):

    {"format": "gust.chat", "version": 1, "exported_at": "...",
     "chat": {"id", "title", "model", "system_prompt", "agent_id", "pinned", "archived",
              "tags", "created_at", "updated_at"},
     "messages": [{"id", "parent_id", "role", "content", "reasoning", "status", "model",
                   "usage", "sources", "error", "finish_reason", "feedback",
                   "created_at", "updated_at"}, ...]}

`feedback` is the owner's rating of an answer, {"rating": 1 | -1, "comment"}, or null;
tags, finish reasons and ratings are read back by an import.

`messages` holds every message of every branch, oldest first; `parent_id` links the tree
(null for a root). Times are ISO 8601 UTC with microseconds, so a round trip keeps the
order of messages. The ZIP of GET /api/export holds `manifest.json` and, per chat,
`chats/<chat id>.json` (that document) and `chats/<chat id>.md`.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from gust import __version__
from gust.domain.branches import children_index
from gust.domain.ids import now
from gust.domain.models import Chat, Message, User, public_feedback
from gust.services.chats import ChatService

CHAT_FORMAT = "gust.chat"
EXPORT_FORMAT = "gust.export"
VERSION = 1
PAGE = 50  # chats read from the store at a time


def iso_precise(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with microseconds (exports keep the exact order)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def chat_document(chat: Chat, messages: Iterable[Message]) -> dict[str, Any]:
    """The "gust.chat" JSON document of a chat and all its messages."""
    return {
        "format": CHAT_FORMAT,
        "version": VERSION,
        "exported_at": iso_precise(now()),
        "chat": {
            "id": chat.id,
            "title": chat.title,
            "model": chat.model,
            "system_prompt": chat.system_prompt,
            "agent_id": chat.agent_id,
            "pinned": chat.pinned,
            "archived": chat.archived,
            "tags": list(chat.tags),
            "created_at": iso_precise(chat.created_at),
            "updated_at": iso_precise(chat.updated_at),
        },
        "messages": [
            {
                "id": m.id,
                "parent_id": m.parent_id,
                "role": m.role,
                "content": m.content,
                "reasoning": m.reasoning,
                "status": m.status,
                "model": m.model,
                "usage": m.usage,
                "sources": m.sources,
                "error": m.error,
                "finish_reason": m.finish_reason,
                "feedback": public_feedback(m.feedback),
                "created_at": iso_precise(m.created_at),
                "updated_at": iso_precise(m.updated_at),
            }
            for m in messages
        ],
    }


def chat_markdown(chat: Chat, messages: list[Message]) -> str:
    """A readable Markdown transcript; branches appear as numbered alternatives."""
    lines = [f"# {chat.title}", ""]
    if chat.model:
        lines += [f"Model: {chat.model}  ", ""]
    if chat.tags:
        lines += [f"Tags: {', '.join(chat.tags)}  ", ""]
    if chat.system_prompt:
        lines += ["> System prompt:", *[f"> {line}" for line in chat.system_prompt.splitlines()], ""]
    children = children_index(messages)

    def walk(parent: str | None, depth: int, label: str) -> None:
        kids = children.get(parent, [])
        for n, message in enumerate(kids, 1):
            branch = f"{label}{n}." if len(kids) > 1 else label
            heading = "#" * min(2 + depth, 6)
            alt = f" (branch {branch.rstrip('.')})" if branch else ""
            lines.extend([f"{heading} {message.role.capitalize()}{alt}", "", message.content, ""])
            lines.extend(_feedback_lines(message))
            walk(message.id, depth + (1 if len(kids) > 1 else 0), branch)

    walk(None, 0, "")
    return "\n".join(lines).rstrip() + "\n"


def _feedback_lines(message: Message) -> list[str]:
    feedback = public_feedback(message.feedback)
    if feedback is None:
        return []
    rating = "👍 helpful" if feedback["rating"] == 1 else "👎 not helpful"
    comment = f": {feedback['comment']}" if feedback["comment"] else ""
    return [f"*Feedback: {rating}{comment}*", ""]


class _ChunkBuffer:
    """A write-only, unseekable file for zipfile: the ZIP's bytes wait here until drained."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


class ExportService:
    def __init__(self, chats: ChatService) -> None:
        self.chats = chats

    async def chat_export(self, user: User, chat_id: str) -> tuple[Chat, list[Message]]:
        """A chat of the user and every message of every branch (NotFound for others')."""
        chat = await self.chats.get_chat(user, chat_id)
        return chat, await self.chats.store.list_messages(user.id, chat.id)

    async def _all_chats(self, user: User) -> AsyncIterator[Chat]:
        cursor: str | None = None
        while True:
            page, cursor = await self.chats.list_chats(user, limit=PAGE, cursor=cursor, archived=None)
            for chat in page:
                yield chat
            if cursor is None:
                return

    async def zip_chunks(self, user: User) -> AsyncIterator[bytes]:
        """The user's chats as a ZIP, yielded chat by chat: memory holds one chat at a time."""
        buffer = _ChunkBuffer()
        count = 0
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            async for chat in self._all_chats(user):
                messages = await self.chats.store.list_messages(user.id, chat.id)
                document = json.dumps(chat_document(chat, messages), ensure_ascii=False, indent=1)
                archive.writestr(f"chats/{chat.id}.json", document)
                archive.writestr(f"chats/{chat.id}.md", chat_markdown(chat, messages))
                count += 1
                yield buffer.drain()
            manifest = {
                "format": EXPORT_FORMAT,
                "version": VERSION,
                "exported_at": iso_precise(now()),
                "gust_version": __version__,
                "chats": count,
                "chat_format": CHAT_FORMAT,
            }
            archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        yield buffer.drain()
