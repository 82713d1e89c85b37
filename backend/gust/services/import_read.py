"""Reading an import file in the parse worker: its format, its archive, its JSON.

Accepted files (detected by shape):
- a "gust.chat" document (services/exports.py), a JSON list of them, or
  {"format": "gust.export", "chats": [...]};
- the ZIP of GET /api/export (its chats/*.json documents), read with services/safe_archive.py;
- ChatGPT's conversations.json: a list of conversations with a "mapping".

`parse_file` is the target of the isolated parse worker (ports/isolation.py, started by
services/imports.py): it never runs on the server's event loop, its memory and time are
bounded by the worker's limits, and it yields JSON items. Each conversation is checked by
services/import_formats.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Literal

from gust.domain.errors import BadRequest, PayloadTooLarge
from gust.domain.json_input import MAX_JSON_DEPTH  # the one limit of every JSON input
from gust.services.import_formats import (
    CHAT_FORMAT,
    EXPORT_FORMAT,
    MAX_CONVERSATIONS,
    MAX_MESSAGES,
    InvalidConversation,
    clean_text,
    parse_chatgpt,
    parse_gust,
    title_of,
)
from gust.services.safe_archive import ArchiveLimits, ArchiveRefused, is_zip, read_zip

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _clean_strings(root: Any) -> Any:
    """`root` with clean_text applied to every string and key, walked without recursion."""
    root = [root]
    stack: list[Any] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    node[i] = clean_text(item)
                elif isinstance(item, list | dict):
                    stack.append(item)
        else:
            for key in list(node):
                item = node.pop(key)
                node[clean_text(key)] = clean_text(item) if isinstance(item, str) else item
                if isinstance(item, list | dict):
                    stack.append(item)
    return root[0]


# -- reading the file (in the parse worker) ------------------------------------------------------
def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _too_deep() -> BadRequest:
    return BadRequest(f"the file nests deeper than {MAX_JSON_DEPTH} levels", code="json_too_deep",
                      max_depth=MAX_JSON_DEPTH)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than `limit` levels in `value`, without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def load_json(data: bytes) -> Any:
    """JSON from a file: NaN and Infinity refused (400 invalid_import_file); nesting deeper
    than MAX_JSON_DEPTH a 400 json_too_deep, the answer of every JSON route, not a crash."""
    try:
        loaded = json.loads(data, parse_constant=_no_constants)
    except RecursionError:
        raise _too_deep() from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(f"the file is not valid JSON: {exc}", code="invalid_import_file") from None
    if _deeper_than(loaded, MAX_JSON_DEPTH):
        raise _too_deep()
    # Lone surrogates ("\\ud800" escapes) cannot be validated, stored or encoded: replace them.
    return _clean_strings(loaded) if _SURROGATE_ESCAPE.search(data) else loaded


def _wanted(name: str) -> bool:
    return name.endswith(".json") and name.rsplit("/", 1)[-1] != "manifest.json"


def conversations(data: bytes, limits: ArchiveLimits) -> list[tuple[Literal["gust", "chatgpt"], Any]]:
    """The conversations of a file with their format; BadRequest for an unknown file."""
    if is_zip(data):
        try:
            members = read_zip(data, limits, want=_wanted)
        except ArchiveRefused as exc:
            if exc.code == "archive_corrupt":
                raise BadRequest(exc.message, code="invalid_import_file") from None
            raise
        items: list[Any] = []
        for member in members:
            items.append(load_json(member.data))
    else:
        loaded = load_json(data)
        if isinstance(loaded, dict) and loaded.get("format") == EXPORT_FORMAT:
            chats = loaded.get("chats")
            items = chats if isinstance(chats, list) else []
        elif isinstance(loaded, list):
            items = loaded
        else:
            items = [loaded]
    if len(items) > MAX_CONVERSATIONS:
        raise PayloadTooLarge(f"the file holds more than {MAX_CONVERSATIONS} conversations",
                              code="import_too_many_conversations", limit=MAX_CONVERSATIONS)
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


def parse_file(data: bytes, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The isolated worker's entry: {"chat": ParsedChat fields} or {"skipped": {title, reason}}.

    `params`: max_bytes (inflated bytes of a ZIP), max_members, max_ratio, max_seconds."""
    limits = ArchiveLimits(
        max_unpacked_bytes=int(params["max_bytes"]),
        max_members=int(params.get("max_members", 25_000)),
        max_ratio=float(params.get("max_ratio", 250.0)),
        max_seconds=float(params.get("max_seconds", 30.0)),
    )
    messages = 0
    for kind, raw in conversations(data, limits):
        inner = raw.get("chat") if kind == "gust" else raw
        title = title_of(inner.get("title") if isinstance(inner, dict) else None)
        try:
            parsed = parse_gust(raw) if kind == "gust" else parse_chatgpt(raw)
        except InvalidConversation as exc:
            yield {"skipped": {"title": title, "reason": str(exc)}}
            continue
        messages += len(parsed.messages)
        if messages > MAX_MESSAGES:
            raise PayloadTooLarge(f"the file holds more than {MAX_MESSAGES} messages",
                                  code="import_too_many_messages", limit=MAX_MESSAGES)
        yield {"chat": {"title": parsed.title, "chat": parsed.chat, "messages": parsed.messages}}
