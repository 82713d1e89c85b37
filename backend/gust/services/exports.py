"""Export: one chat as Markdown or JSON, or all of a user's chats as a ZIP.

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
`chats/<chat id>.json` (that document) and `chats/<chat id>.md`. It is built completely
(in a spooled temporary file) before its first byte is sent: any failure is an error
status, never a 200 with a broken archive. Every walk of a message tree is iterative.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import IO, Any

from gust import __version__
from gust.domain.branches import children_index
from gust.domain.ids import now
from gust.domain.models import Chat, Message, User, public_feedback
from gust.services.chats import ChatService
from gust.services.import_formats import CHAT_FORMAT, EXPORT_FORMAT, clean_text

VERSION = 1
PAGE = 50  # chats read from the store at a time
SPOOL_BYTES = 8 * 1024 * 1024  # a ZIP export larger than this is built in a temporary file


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
    # Depth first with an explicit stack, never recursion: a branch may be any length.
    # Items: (message, its heading depth, its branch label, its children's depth), pushed
    # in reverse so they pop in order.
    stack: list[tuple[Message, int, str, int]] = []

    def push(parent: str | None, depth: int, label: str) -> None:
        kids = children.get(parent, [])
        for n in range(len(kids), 0, -1):
            branch = f"{label}{n}." if len(kids) > 1 else label
            stack.append((kids[n - 1], depth, branch, depth + (1 if len(kids) > 1 else 0)))

    push(None, 0, "")
    seen: set[str] = set()
    while stack:
        message, depth, branch, next_depth = stack.pop()
        if message.id in seen:  # a cycle can only come from a corrupt store; never loop
            continue
        seen.add(message.id)
        heading = "#" * min(2 + depth, 6)
        alt = f" (branch {branch.rstrip('.')})" if branch else ""
        lines.extend([f"{heading} {message.role.capitalize()}{alt}", "", message.content, ""])
        lines.extend(_feedback_lines(message))
        push(message.id, next_depth, branch)
    return "\n".join(lines).rstrip() + "\n"


def _feedback_lines(message: Message) -> list[str]:
    feedback = public_feedback(message.feedback)
    if feedback is None:
        return []
    rating = "👍 helpful" if feedback["rating"] == 1 else "👎 not helpful"
    comment = f": {feedback['comment']}" if feedback["comment"] else ""
    return [f"*Feedback: {rating}{comment}*", ""]


def utf8(text: str) -> bytes:
    """UTF-8 bytes of stored text; a lone surrogate (old data) becomes U+FFFD, not an error."""
    return clean_text(text).encode("utf-8")


def _write_chat(archive: zipfile.ZipFile, chat: Chat, messages: list[Message]) -> None:
    document = json.dumps(chat_document(chat, messages), ensure_ascii=False, indent=1)
    archive.writestr(f"chats/{chat.id}.json", utf8(document))
    archive.writestr(f"chats/{chat.id}.md", utf8(chat_markdown(chat, messages)))


def _write_manifest(archive: zipfile.ZipFile, count: int) -> None:
    manifest = {
        "format": EXPORT_FORMAT,
        "version": VERSION,
        "exported_at": iso_precise(now()),
        "gust_version": __version__,
        "chats": count,
        "chat_format": CHAT_FORMAT,
    }
    archive.writestr("manifest.json", json.dumps(manifest, indent=1))
    archive.close()


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

    async def build_zip(self, user: User) -> tuple[IO[bytes], int]:
        """The user's chats as a complete ZIP in a spooled file (memory up to SPOOL_BYTES, then
        a temporary file), and its size. Built before anything is sent, so a failure on any
        chat is an error response, never a 200 with a truncated archive. One chat is in memory
        at a time; serialising and compressing run in a worker thread, off the event loop.
        The caller closes the file."""
        loop = asyncio.get_running_loop()
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 - returned open
        archive = zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED)
        try:
            count = 0
            async for chat in self._all_chats(user):
                messages = await self.chats.store.list_messages(user.id, chat.id)
                await loop.run_in_executor(None, _write_chat, archive, chat, messages)
                count += 1
            await loop.run_in_executor(None, _write_manifest, archive, count)
            size = spool.tell()
            spool.seek(0)
        except BaseException:
            with contextlib.suppress(Exception):
                archive.close()
            spool.close()
            raise
        return spool, size
