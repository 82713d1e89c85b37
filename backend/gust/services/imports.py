"""Import: Gust's own exports and ChatGPT's conversations.json become chats of the caller.

Accepted files (detected by shape):
- a "gust.chat" document (services/exports.py), a JSON list of them, or
  {"format": "gust.export", "chats": [...]};
- the ZIP of GET /api/export (its chats/*.json documents);
- ChatGPT's conversations.json: a list of {"title", "create_time", "mapping": {node id:
  {"parent", "children", "message": {"author": {"role"}, "content": {"parts"}, ...}}}}.

Every conversation is validated and built in memory first, then written; a failed write
deletes what was written for it, so each conversation is imported whole or not at all.
Imported chats and messages get new ids and belong to the caller; times, statuses and
usage come from the file (so /api/usage counts imported answers in their original period,
and importing a file twice counts them twice). A chat's agent_id and share links are not
imported: agents belong to a team and may not exist here. ChatGPT's `current_node` is not
kept: as for every Gust chat, the current branch is the one with the latest message.
They are stored with index_state "pending", so the search indexer picks them up.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import pydantic

from gust.domain.errors import BadRequest, PayloadTooLarge
from gust.domain.ids import new_id, now
from gust.domain.json_input import parse_json
from gust.domain.models import FINAL_STATUSES, Chat, Message, MessageStatus, Role, User
from gust.ports.store import Store
from gust.services.exports import CHAT_FORMAT, EXPORT_FORMAT

log = logging.getLogger(__name__)

MAX_TITLE = 200
CHATGPT_ROLES = {"user", "assistant", "system"}


class InvalidConversation(Exception):
    """One conversation of a file cannot be imported; the message says why."""


@dataclass(slots=True)
class ParsedChat:
    title: str
    chat: dict[str, Any]
    # (message fields, file id, parent's file id), parents before children.
    messages: list[tuple[dict[str, Any], str, str | None]] = field(default_factory=list)


@dataclass(slots=True)
class ImportReport:
    imported: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)


# -- Gust's format ------------------------------------------------------------------------
class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")


class GustMessageIn(_Strict):
    id: str = pydantic.Field(min_length=1, max_length=200)
    parent_id: str | None = None
    role: Role
    content: str
    reasoning: str | None = None
    status: Literal["complete", "streaming", "stopped", "error", "interrupted"] = "complete"
    model: str | None = None
    usage: dict[str, Any] | None = None
    sources: list[dict[str, Any]] | None = None
    error: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime | None = None


class GustChatIn(_Strict):
    title: str = "Imported chat"
    model: str | None = None
    system_prompt: str | None = None
    pinned: bool = False
    archived: bool = False
    created_at: datetime
    updated_at: datetime | None = None


class GustDocumentIn(_Strict):
    format: Literal["gust.chat"]
    version: Literal[1]
    chat: GustChatIn
    messages: list[GustMessageIn]


def _ts(value: datetime) -> float:
    return value.timestamp()


def _title(value: Any, default: str = "Imported chat") -> str:
    title = " ".join(str(value).split()) if isinstance(value, str) else ""
    return (title or default)[:MAX_TITLE]


def parse_gust(raw: Any) -> ParsedChat:
    try:
        doc = GustDocumentIn.model_validate(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidConversation(f"{where}: {first['msg']}") from None
    chat = doc.chat
    created = _ts(chat.created_at)
    parsed = ParsedChat(
        title=_title(chat.title),
        chat={
            "title": _title(chat.title),
            "model": chat.model,
            "system_prompt": chat.system_prompt,
            "pinned": chat.pinned,
            "archived": chat.archived,
            "created_at": created,
            "updated_at": _ts(chat.updated_at) if chat.updated_at else created,
        },
    )
    by_id: dict[str, GustMessageIn] = {}
    for m in doc.messages:
        if m.id in by_id:
            raise InvalidConversation(f"message id {m.id!r} appears twice")
        by_id[m.id] = m
    for m in doc.messages:
        if m.parent_id is not None and m.parent_id not in by_id:
            raise InvalidConversation(f"message {m.id!r} names a parent that is not in the file")
    for m in _parents_first(doc.messages, by_id):
        status: MessageStatus = m.status if m.status in FINAL_STATUSES else "interrupted"
        created_m = _ts(m.created_at)
        fields = {
            "role": m.role, "content": m.content, "reasoning": m.reasoning, "status": status,
            "model": m.model, "usage": m.usage, "sources": m.sources, "error": m.error,
            "created_at": created_m, "updated_at": _ts(m.updated_at) if m.updated_at else created_m,
        }
        parsed.messages.append((fields, m.id, m.parent_id))
    return parsed


def _parents_first(messages: list[GustMessageIn], by_id: dict[str, GustMessageIn]) -> list[GustMessageIn]:
    """File order, except that a parent always comes before its children; refuses cycles."""
    placed: set[str] = set()
    ordered: list[GustMessageIn] = []
    for message in messages:
        chain: list[GustMessageIn] = []
        current: GustMessageIn | None = message
        while current is not None and current.id not in placed:
            if any(c.id == current.id for c in chain):
                raise InvalidConversation("the messages' parent links form a cycle")
            chain.append(current)
            current = by_id[current.parent_id] if current.parent_id is not None else None
        for item in reversed(chain):
            placed.add(item.id)
            ordered.append(item)
    return ordered


# -- ChatGPT's format -----------------------------------------------------------------------
def _chatgpt_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts")
    if isinstance(parts, list):
        return "\n\n".join(p for p in parts if isinstance(p, str) and p.strip()).strip()
    text = content.get("text")
    return text.strip() if isinstance(text, str) else ""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def parse_chatgpt(raw: Any) -> ParsedChat:
    """One ChatGPT conversation; hidden, empty and tool nodes are left out and their
    children attached to the nearest kept ancestor, so branches survive."""
    if not isinstance(raw, dict):
        raise InvalidConversation("a conversation must be a JSON object")
    mapping = raw.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise InvalidConversation("mapping is missing or empty")
    for node_id, node in mapping.items():
        if not isinstance(node, dict):
            raise InvalidConversation(f"node {node_id!r} is not an object")
        children = node.get("children", [])
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise InvalidConversation(f"node {node_id!r}: children must be a list of node ids")
    started = _number(raw.get("create_time")) or now()
    title = _title(raw.get("title"), "Imported from ChatGPT")
    parsed = ParsedChat(title=title, chat={})
    roots = [
        node_id for node_id, node in mapping.items()
        if node.get("parent") is None or node.get("parent") not in mapping
    ]
    if not roots:
        raise InvalidConversation("the conversation has no root node")
    seen: set[str] = set()
    latest = started
    # Depth first, children in the file's order: (node id, nearest kept ancestor, its time).
    stack: list[tuple[str, str | None, float]] = [(r, None, started) for r in reversed(roots)]
    while stack:
        node_id, kept_parent, parent_time = stack.pop()
        if node_id in seen:
            raise InvalidConversation(f"node {node_id!r} is reached twice (a cycle or shared child)")
        seen.add(node_id)
        node = mapping.get(node_id)
        if not isinstance(node, dict):
            raise InvalidConversation(f"node {node_id!r} is named as a child but missing")
        message = node.get("message")
        next_parent, next_time = kept_parent, parent_time
        if isinstance(message, dict):
            author = message.get("author")
            role = author.get("role") if isinstance(author, dict) else None
            metadata = message.get("metadata")
            hidden = isinstance(metadata, dict) and bool(metadata.get("is_visually_hidden_from_conversation"))
            text = _chatgpt_text(message)
            if role in CHATGPT_ROLES and text and not hidden:
                # Children never predate their parent: Gust orders a tree by creation time.
                created = max(_number(message.get("create_time")) or parent_time, parent_time)
                model = metadata.get("model_slug") if isinstance(metadata, dict) else None
                fields = {
                    "role": role, "content": text, "reasoning": None, "status": "complete",
                    "model": model if isinstance(model, str) else None, "usage": None,
                    "sources": None, "error": None, "created_at": created, "updated_at": created,
                }
                parsed.messages.append((fields, node_id, kept_parent))
                next_parent, next_time = node_id, created
                latest = max(latest, created)
        for child in reversed(node.get("children", [])):
            stack.append((child, next_parent, next_time))
    if not parsed.messages:
        raise InvalidConversation("no messages to import")
    updated = _number(raw.get("update_time")) or latest
    parsed.chat = {
        "title": title, "model": None, "system_prompt": None, "pinned": False, "archived": False,
        "created_at": started, "updated_at": max(updated, started),
    }
    return parsed


# -- reading the file -------------------------------------------------------------------------
def _load_json(data: bytes) -> Any:
    return parse_json(data, what="the file", code="invalid_import_file")


def _from_zip(data: bytes, max_bytes: int) -> list[Any]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [i for i in archive.infolist() if i.filename.endswith(".json")
                   and i.filename.rsplit("/", 1)[-1] != "manifest.json"]
        if sum(i.file_size for i in entries) > max_bytes:
            raise PayloadTooLarge(f"the archive unpacks to more than {max_bytes} bytes", limit=max_bytes)
        return [_load_json(archive.read(i)) for i in entries]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise BadRequest(f"the file is not a readable ZIP archive: {exc}",
                         code="invalid_import_file") from None


def conversations(data: bytes, max_bytes: int) -> list[tuple[Literal["gust", "chatgpt"], Any]]:
    """The conversations of a file with their format; BadRequest for an unknown file."""
    if data[:4] == b"PK\x03\x04":
        items: list[Any] = _from_zip(data, max_bytes)
    else:
        loaded = _load_json(data)
        if isinstance(loaded, dict) and loaded.get("format") == EXPORT_FORMAT:
            chats = loaded.get("chats")
            items = chats if isinstance(chats, list) else []
        elif isinstance(loaded, list):
            items = loaded
        else:
            items = [loaded]
    found: list[tuple[Literal["gust", "chatgpt"], Any]] = []
    for item in items:
        if isinstance(item, dict) and item.get("format") == CHAT_FORMAT:
            found.append(("gust", item))
        elif isinstance(item, dict) and "mapping" in item:
            found.append(("chatgpt", item))
        else:
            raise BadRequest(
                "not a Gust export or a ChatGPT conversations.json: every conversation must be a "
                f'"{CHAT_FORMAT}" document or have a "mapping"',
                code="unknown_import_format",
            )
    if not found:
        raise BadRequest("the file holds no conversations", code="unknown_import_format")
    return found


class ImportService:
    def __init__(self, store: Store, *, max_bytes: int) -> None:
        self.store = store
        self.max_bytes = max_bytes

    async def import_file(self, user: User, data: bytes) -> ImportReport:
        """Import every valid conversation of the file; report the others with a reason."""
        report = ImportReport()
        for kind, raw in conversations(data, self.max_bytes):
            title = _title(raw.get("title") if kind == "chatgpt" else (raw.get("chat") or {}).get("title"))
            try:
                parsed = parse_gust(raw) if kind == "gust" else parse_chatgpt(raw)
            except InvalidConversation as exc:
                report.skipped.append({"title": title, "reason": str(exc)})
                continue
            try:
                chat_id = await self._write(user, parsed)
            except Exception:  # noqa: BLE001 - reported per conversation; the rest go on
                log.exception("import of a conversation failed")
                reason = "storing it failed; nothing was kept"
                report.skipped.append({"title": parsed.title, "reason": reason})
                continue
            count = len(parsed.messages)
            report.imported.append({"title": parsed.title, "chat_id": chat_id, "messages": count})
        log.info("import by %s: %d imported, %d skipped", user.id, len(report.imported), len(report.skipped))
        return report

    async def _write(self, user: User, parsed: ParsedChat) -> str:
        chat = Chat(id=new_id(), user_id=user.id, team_id=user.team_id, **parsed.chat)
        ids: dict[str, str] = {}
        messages = []
        for fields, file_id, file_parent in parsed.messages:
            ids[file_id] = new_id()
            messages.append(Message(
                id=ids[file_id], chat_id=chat.id, user_id=user.id, team_id=user.team_id,
                parent_id=ids[file_parent] if file_parent is not None else None, **fields,
            ))
        await self.store.create_chat(chat)
        try:
            for message in messages:
                await self.store.create_message(message)
        except BaseException:
            await self.store.delete_chat(user.id, chat.id)
            raise
        return chat.id
