"""The search port: a searchable copy of chats and messages, always queried per user."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from gust.domain.errors import Unavailable

DocKind = Literal["chat", "message"]

# Highlight markers used between an adapter and `snippet_html`: control characters that
# documents never contain (`clean_text` strips them), so user text cannot fake a <mark>.
MARK_START = "\x02"
MARK_END = "\x03"
MAX_QUERY_CHARS = 200


class SearchIndexError(Unavailable):
    """The search engine refused or failed an operation (unreachable, locked, task failed)."""

    code = "search_unavailable"


@dataclass(frozen=True, slots=True)
class IndexDocument:
    """One searchable document: a chat (its title) or a message (its content).

    `fingerprint` digests every indexed field, so reconcile can tell a stale document
    from a current one without reading it whole.
    """

    id: str
    kind: DocKind
    user_id: str
    team_id: str
    chat_id: str
    message_id: str | None
    role: str | None
    title: str
    content: str
    created_at: float
    fingerprint: str


@dataclass(frozen=True, slots=True)
class DocRef:
    """What reconcile needs to know of an indexed document to find its source."""

    id: str
    kind: DocKind
    user_id: str
    chat_id: str
    message_id: str | None


@dataclass(frozen=True, slots=True)
class SearchHit:
    doc_id: str
    kind: DocKind
    chat_id: str
    message_id: str | None
    role: str | None
    snippet: str  # HTML: escaped text with <mark>...</mark> around the matches
    created_at: float


@dataclass(frozen=True, slots=True)
class SearchPage:
    hits: list[SearchHit]
    total_estimate: int


# Given a batch of indexed documents, the ids of those whose source record is gone.
OrphanFinder = Callable[[Sequence[DocRef]], Awaitable[Collection[str]]]


class SearchIndex(Protocol):
    """A search engine holding `IndexDocument`s.

    Every query names the user: adapters filter by `user_id` themselves, so no caller
    can forget it. Writes raise SearchIndexError when the engine did not apply them.
    """

    name: str

    async def start(self) -> None:
        """Connect and create or update the index and its settings (idempotent)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the engine cannot answer right now."""

    async def upsert(self, documents: Sequence[IndexDocument]) -> None:
        """Insert or replace documents (by id); applied when this returns."""

    async def delete(self, doc_ids: Sequence[str]) -> None:
        """Remove documents by id (unknown ids are ignored)."""

    async def delete_chat_documents(self, user_id: str, chat_ids: Sequence[str]) -> None:
        """Remove every document of these chats of this user: the chats and all their messages."""

    async def fingerprints(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """The stored fingerprint of each of these documents that the index holds."""

    async def prune(self, find_orphans: OrphanFinder, *, batch_size: int) -> int:
        """Walk every document in batches, delete those `find_orphans` names; return how many."""

    async def search(
        self,
        user_id: str,
        query: str,
        *,
        limit: int,
        offset: int = 0,
        chat_id: str | None = None,
        role: str | None = None,
    ) -> SearchPage:
        """The user's documents matching `query`, best first."""

    async def count(self, user_id: str | None = None) -> int:
        """How many documents the index holds (of one user, or in all)."""


def chat_doc_id(chat_id: str) -> str:
    return f"c_{chat_id}"


def message_doc_id(message_id: str) -> str:
    return f"m_{message_id}"


def clean_text(text: str) -> str:
    """Text as indexed: without the highlight markers."""
    if MARK_START in text or MARK_END in text:
        return text.replace(MARK_START, "").replace(MARK_END, "")
    return text


def snippet_html(marked: str) -> str:
    """Text with MARK_START/MARK_END around matches as HTML: escaped, matches in <mark>."""
    return html.escape(marked, quote=True).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")
