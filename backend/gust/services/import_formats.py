"""The conversations of an import file, checked field by field: Gust's "gust.chat" documents
(services/exports.py) and ChatGPT's conversations (a {"title", "create_time", "mapping":
{node id: {"parent", "children", "message": {"author": {"role"}, "content": {"parts"}}}}}).

A file is written by whoever uploads it, so every field is checked as if an attacker typed
it: types are strict, texts, ids and lists are bounded, times must fall between 2000 and
tomorrow, enums are enums, and free-form objects are rebuilt from known fields only (nothing
arbitrary or deeply nested is kept). `usage` is kept for display, marked `"imported": true`,
and never counted by usage reports. `sources` are rebuilt: only http(s) URLs, bounded
titles, numbered 1..k without repeats. Lone UTF-16 surrogates become U+FFFD.

These parsers run in the isolated parse worker (services/import_read.py's `parse_file`,
started by services/imports.py through ports/isolation.py), never on the event loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr

from gust.domain.errors import ValidationError
from gust.domain.models import FINAL_STATUSES, MessageStatus, Role
from gust.services.chats import clean_tags

CHAT_FORMAT = "gust.chat"
EXPORT_FORMAT = "gust.export"
MAX_TITLE = 200
MAX_TEXT = 2_000_000  # characters of a message's content or reasoning
MAX_SYSTEM_PROMPT = 20_000
MAX_SHORT = 200  # ids, model names
MAX_SOURCES = 50
MAX_SOURCE_TITLE = 300
MAX_URL = 2048
MAX_TOKENS = 100_000_000  # per answer
MAX_COST = 100_000.0
MAX_CONVERSATIONS = 20_000  # per file
MAX_MESSAGES = 500_000  # per file
EARLIEST = 946_684_800.0  # 2000-01-01: no chat predates it
CHATGPT_ROLES = {"user", "assistant", "system"}


class InvalidConversation(Exception):
    """One conversation of a file cannot be imported; the message says why."""


@dataclass(slots=True)
class ParsedChat:
    title: str
    chat: dict[str, Any]
    # (message fields, file id, parent's file id), parents before children.
    messages: list[tuple[dict[str, Any], str, str | None]] = field(default_factory=list)


def clean_text(value: str) -> str:
    """The text with lone surrogates (from JSON "\\ud800" escapes) replaced: storable, encodable."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return value


def _latest() -> float:
    return time.time() + 86_400


def _check_time(value: datetime) -> datetime:
    if not EARLIEST <= value.timestamp() <= _latest():
        raise ValueError("must be a time between 2000-01-01 and tomorrow")
    return value


Text = Annotated[StrictStr, Field(max_length=MAX_TEXT), AfterValidator(clean_text)]
Short = Annotated[StrictStr, Field(max_length=MAX_SHORT), AfterValidator(clean_text)]
Prompt = Annotated[StrictStr, Field(max_length=MAX_SYSTEM_PROMPT), AfterValidator(clean_text)]
Time = Annotated[datetime, AfterValidator(_check_time)]


# -- Gust's format ------------------------------------------------------------------------
class _In(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")


class UsageIn(_In):
    prompt_tokens: StrictInt = Field(0, ge=0, le=MAX_TOKENS)
    completion_tokens: StrictInt = Field(0, ge=0, le=MAX_TOKENS)
    cost: float | None = Field(None, ge=0, le=MAX_COST, allow_inf_nan=False, strict=True)
    estimated: StrictBool = False

    def stored(self) -> dict[str, Any]:
        """As kept on the message: shown, never counted (the usage reports skip `imported`)."""
        usage: dict[str, Any] = {"prompt_tokens": self.prompt_tokens,
                                 "completion_tokens": self.completion_tokens}
        if self.cost is not None:
            usage["cost"] = self.cost
        if self.estimated:
            usage["estimated"] = True
        usage["imported"] = True
        return usage


class ErrorIn(_In):
    code: Annotated[StrictStr, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    message: Annotated[StrictStr, Field(max_length=1000), AfterValidator(clean_text)] = ""
    retryable: StrictBool = False


class FeedbackIn(_In):
    rating: Literal[1, -1]
    comment: Annotated[StrictStr, Field(max_length=2000), AfterValidator(clean_text)] | None = None


class GustMessageIn(_In):
    id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_SHORT)]
    parent_id: Annotated[StrictStr, Field(min_length=1, max_length=MAX_SHORT)] | None = None
    role: Role
    content: Text
    reasoning: Text | None = None
    status: Literal["complete", "streaming", "stopped", "error", "interrupted"] = "complete"
    model: Short | None = None
    usage: UsageIn | None = None
    sources: list[Any] | None = Field(None, max_length=MAX_SOURCES)
    error: ErrorIn | None = None
    finish_reason: Annotated[StrictStr, Field(max_length=40), AfterValidator(clean_text)] | None = None
    feedback: FeedbackIn | None = None
    created_at: Time
    updated_at: Time | None = None


class GustChatIn(_In):
    title: StrictStr = Field("Imported chat", max_length=10_000)
    model: Short | None = None
    system_prompt: Prompt | None = None
    pinned: StrictBool = False
    archived: StrictBool = False
    tags: list[StrictStr] = Field(default_factory=list, max_length=100)
    created_at: Time
    updated_at: Time | None = None


class GustDocumentIn(_In):
    format: Literal["gust.chat"]
    version: Literal[1]
    chat: GustChatIn
    messages: list[GustMessageIn] = Field(max_length=MAX_MESSAGES)


def title_of(value: Any, default: str = "Imported chat") -> str:
    title = " ".join(clean_text(value).split()) if isinstance(value, str) else ""
    return (title or default)[:MAX_TITLE]


def _http_url(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > MAX_URL or not value.isprintable() or " " in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.scheme.lower() in ("http", "https") and parts.hostname else None


def normalize_sources(raw: list[Any] | None) -> list[dict[str, Any]] | None:
    """Sources as the UI renders them: http(s) URLs only, bounded titles, `n` = 1..k unique.

    A file's own numbering orders them when it is usable (so citations such as [2] keep
    pointing at the same page); a missing or repeated `n` falls back to the file's order.
    """
    if raw is None:
        return None
    kept: list[tuple[float, int, dict[str, Any]]] = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            raise InvalidConversation("every source must be an object")
        url = _http_url(item.get("url"))
        if url is None:
            continue
        title = title_of(item.get("title"), url)[:MAX_SOURCE_TITLE]
        n = item.get("n")
        ok = isinstance(n, int) and not isinstance(n, bool) and 0 < n <= MAX_SOURCES
        order = float(n) if ok and isinstance(n, int) else math.inf
        kept.append((order, position, {"url": url, "title": title}))
    kept.sort(key=lambda k: (k[0], k[1]))
    return [{"n": n, **source} for n, (_, _, source) in enumerate(kept, 1)] or None


def _tags(tags: list[str]) -> list[str]:
    try:
        return clean_tags(tags)
    except ValidationError as exc:
        raise InvalidConversation(f"chat.tags: {exc.message}") from None


def parse_gust(raw: Any) -> ParsedChat:
    try:
        doc = GustDocumentIn.model_validate(raw)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidConversation(f"{where}: {first['msg']}") from None
    chat = doc.chat
    created = chat.created_at.timestamp()
    title = title_of(chat.title)
    parsed = ParsedChat(title=title, chat={
        "title": title, "model": chat.model, "system_prompt": chat.system_prompt,
        "pinned": chat.pinned, "archived": chat.archived, "tags": _tags(chat.tags), "created_at": created,
        "updated_at": max(chat.updated_at.timestamp() if chat.updated_at else created, created),
    })
    by_id: dict[str, GustMessageIn] = {}
    for m in doc.messages:
        if m.id in by_id:
            raise InvalidConversation(f"message id {m.id!r} appears twice")
        by_id[m.id] = m
    for m in doc.messages:
        if m.parent_id is not None and m.parent_id not in by_id:
            raise InvalidConversation(f"message {m.id!r} names a parent that is not in the file")
    for m in parents_first(doc.messages, by_id):
        status: MessageStatus = m.status if m.status in FINAL_STATUSES else "interrupted"
        created_m = m.created_at.timestamp()
        fields = {
            "role": m.role, "content": m.content, "reasoning": m.reasoning, "status": status,
            "model": m.model, "usage": m.usage.stored() if m.usage else None,
            "sources": normalize_sources(m.sources),
            "error": m.error.model_dump(exclude_unset=True) if m.error else None,
            "created_at": created_m,
            "updated_at": max(m.updated_at.timestamp() if m.updated_at else created_m, created_m),
            "finish_reason": m.finish_reason,
        }
        if m.feedback is not None and m.role == "assistant":
            fields["feedback"] = {**m.feedback.model_dump(), "updated_at": created_m}
        parsed.messages.append((fields, m.id, m.parent_id))
    return parsed


def parents_first(messages: list[GustMessageIn], by_id: dict[str, GustMessageIn]) -> list[GustMessageIn]:
    """File order, except that a parent always comes before its children; refuses cycles.

    Iterative and linear: a 100,000-message branch is one walk up, never a recursion."""
    placed: set[str] = set()
    ordered: list[GustMessageIn] = []
    for message in messages:
        chain: list[GustMessageIn] = []
        in_chain: set[str] = set()
        current: GustMessageIn | None = message
        while current is not None and current.id not in placed:
            if current.id in in_chain:
                raise InvalidConversation("the messages' parent links form a cycle")
            chain.append(current)
            in_chain.add(current.id)
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
        text = "\n\n".join(p for p in parts if isinstance(p, str) and p.strip()).strip()
    else:
        value = content.get("text")
        text = value.strip() if isinstance(value, str) else ""
    if len(text) > MAX_TEXT:
        raise InvalidConversation(f"a message is longer than {MAX_TEXT} characters")
    return clean_text(text)


def _time(value: Any) -> float | None:
    """Epoch seconds from a file, or None when absent, not a number or not plausible."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    number = float(value)
    return number if math.isfinite(number) and EARLIEST <= number <= _latest() else None


def parse_chatgpt(raw: Any) -> ParsedChat:
    """One ChatGPT conversation; hidden, empty and tool nodes are left out and their
    children attached to the nearest kept ancestor, so branches survive."""
    if not isinstance(raw, dict):
        raise InvalidConversation("a conversation must be a JSON object")
    mapping = raw.get("mapping")
    if not isinstance(mapping, dict) or not mapping:
        raise InvalidConversation("mapping is missing or empty")
    if len(mapping) > MAX_MESSAGES:
        raise InvalidConversation(f"more than {MAX_MESSAGES} messages")
    for node_id, node in mapping.items():
        if not isinstance(node, dict):
            raise InvalidConversation(f"node {node_id[:100]!r} is not an object")
        children = node.get("children", [])
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise InvalidConversation(f"node {node_id[:100]!r}: children must be a list of node ids")
    started = _time(raw.get("create_time")) or time.time()
    title = title_of(raw.get("title"), "Imported from ChatGPT")
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
            raise InvalidConversation(f"node {node_id[:100]!r} is reached twice (a cycle or shared child)")
        seen.add(node_id)
        node = mapping.get(node_id)
        if not isinstance(node, dict):
            raise InvalidConversation(f"node {node_id[:100]!r} is named as a child but missing")
        message = node.get("message")
        next_parent, next_time = kept_parent, parent_time
        if isinstance(message, dict):
            author = message.get("author")
            role = author.get("role") if isinstance(author, dict) else None
            metadata = message.get("metadata")
            meta = metadata if isinstance(metadata, dict) else {}
            hidden = meta.get("is_visually_hidden_from_conversation") is True
            text = _chatgpt_text(message)
            if role in CHATGPT_ROLES and text and not hidden:
                # Children never predate their parent: Gust orders a tree by creation time.
                created = max(_time(message.get("create_time")) or parent_time, parent_time)
                slug = meta.get("model_slug")
                model = clean_text(slug) if isinstance(slug, str) and len(slug) <= MAX_SHORT else None
                fields = {
                    "role": role, "content": text, "reasoning": None, "status": "complete", "model": model,
                    "usage": None, "sources": None, "error": None,
                    "created_at": created, "updated_at": created,
                }
                parsed.messages.append((fields, node_id, kept_parent))
                next_parent, next_time = node_id, created
                latest = max(latest, created)
        for child in reversed(node.get("children", [])):
            stack.append((child, next_parent, next_time))
    if not parsed.messages:
        raise InvalidConversation("no messages to import")
    updated = _time(raw.get("update_time")) or latest
    parsed.chat = {
        "title": title, "model": None, "system_prompt": None, "pinned": False, "archived": False,
        "created_at": started, "updated_at": max(updated, started),
    }
    return parsed
