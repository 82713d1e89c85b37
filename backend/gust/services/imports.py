"""Import: Gust's own exports and ChatGPT's conversations.json become chats of the caller.

The file is read in an isolated worker process (ports/isolation.py) by
services/import_read.py and services/import_formats.py, which check every field and refuse
hostile archives (services/safe_archive.py); the server's event loop only awaits the
result, so a crafted upload costs the worker its memory and time caps, never the server's
responsiveness.

Every conversation is validated and built first, then written; a failed write deletes what
was written for it, so each conversation is imported whole or not at all. Imported chats
and messages get new ids and belong to the caller; times, statuses, sources and usage come
from the file, checked. Imported usage is shown on its answers but marked `imported` and
never counted by /api/usage or team reports: a file can claim anything. A chat's agent_id
and share links are not imported: agents belong to a team and may not exist here.
ChatGPT's `current_node` is not kept: as for every Gust chat, the current branch is the one
with the latest message. Chats are stored with index_state "pending", so the search
indexer picks them up.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from gust.domain.ids import new_id
from gust.domain.models import Chat, Message, User
from gust.ports.isolation import Isolation, Upload
from gust.ports.store import Store

log = logging.getLogger(__name__)

PARSE_TARGET = "gust.services.import_read:parse_file"


@dataclass(slots=True)
class ImportReport:
    imported: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImportLimits:
    max_bytes: int  # inflated bytes of a ZIP's members, actually counted
    max_members: int = 25_000
    max_ratio: float = 250.0
    max_seconds: float = 30.0


class ImportService:
    def __init__(self, store: Store, isolation: Isolation, limits: ImportLimits) -> None:
        self.store = store
        self.isolation = isolation
        self.limits = limits

    async def import_file(self, user: User, data: Upload) -> ImportReport:
        """Import every valid conversation of the file; report the others with a reason."""
        limits = self.limits
        params = {"max_bytes": limits.max_bytes, "max_members": limits.max_members,
                  "max_ratio": limits.max_ratio, "max_seconds": limits.max_seconds}
        items = await self.isolation.run(PARSE_TARGET, data, params, owner=user.id)
        report = ImportReport()
        for item in items:
            if "skipped" in item:
                report.skipped.append(item["skipped"])
                continue
            parsed = item["chat"]
            try:
                chat_id = await self._write(user, parsed)
            except Exception:  # noqa: BLE001 - reported per conversation; the rest go on
                log.exception("import of a conversation failed")
                reason = "storing it failed; nothing was kept"
                report.skipped.append({"title": parsed["title"], "reason": reason})
                continue
            count = len(parsed["messages"])
            report.imported.append({"title": parsed["title"], "chat_id": chat_id, "messages": count})
        log.info("import by %s: %d imported, %d skipped", user.id, len(report.imported), len(report.skipped))
        return report

    async def _write(self, user: User, parsed: dict[str, Any]) -> str:
        chat = Chat(id=new_id(), user_id=user.id, team_id=user.team_id, **parsed["chat"])
        ids: dict[str, str] = {}
        messages = []
        for fields, file_id, file_parent in parsed["messages"]:
            ids[file_id] = new_id()
            messages.append(Message(
                id=ids[file_id], chat_id=chat.id, user_id=user.id, team_id=user.team_id,
                parent_id=ids[file_parent] if file_parent is not None else None, **fields,
            ))
        await self.store.create_chat(chat)
        try:
            for message in messages:
                await self.store.create_message(message)
                # A store may complete a small write without suspending (SQLite writes one
                # row on the loop when idle): yield after each, or a large file holds the
                # loop for all of its writes.
                await asyncio.sleep(0)
        except BaseException:
            await self.store.delete_chat(user.id, chat.id)
            raise
        return chat.id
