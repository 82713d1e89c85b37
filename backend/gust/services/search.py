"""Searching my chats and messages; what a chat or message looks like in the index."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass

from gust.domain.errors import Unavailable, ValidationError
from gust.domain.models import FINAL_STATUSES, Chat, Message, User
from gust.ports.search import (
    MAX_QUERY_CHARS,
    IndexDocument,
    SearchHit,
    SearchIndex,
    SearchIndexError,
    chat_doc_id,
    clean_text,
    message_doc_id,
)
from gust.ports.search_store import SearchStore
from gust.ports.usage_store import LEGACY_API_USAGE_CHAT

log = logging.getLogger(__name__)

MAX_LIMIT = 50


def _fingerprint(*fields: object) -> str:
    raw = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.blake2b(raw, digest_size=10).hexdigest()


def chat_document(chat: Chat) -> IndexDocument:
    """A chat in the index: its title, dated by its last activity."""
    title = clean_text(chat.title)
    return IndexDocument(
        id=chat_doc_id(chat.id),
        kind="chat",
        user_id=chat.user_id,
        team_id=chat.team_id,
        chat_id=chat.id,
        message_id=None,
        role=None,
        title=title,
        content="",
        created_at=chat.updated_at,
        fingerprint=_fingerprint("chat", chat.user_id, chat.team_id, chat.id, title, chat.updated_at),
    )


def message_document(message: Message) -> IndexDocument:
    """A final message in the index: its text (reasoning and sources are not searched)."""
    content = clean_text(message.content)
    m = message
    return IndexDocument(
        id=message_doc_id(m.id),
        kind="message",
        user_id=m.user_id,
        team_id=m.team_id,
        chat_id=m.chat_id,
        message_id=m.id,
        role=m.role,
        title="",
        content=content,
        created_at=m.created_at,
        fingerprint=_fingerprint("message", m.user_id, m.team_id, m.chat_id, m.id, m.role, content,
                                 m.created_at),
    )


# The chat id under which earlier versions kept /v1 usage as content-free messages (moved to
# usage records at start-up; ports/usage_store.LEGACY_API_USAGE_CHAT): never searchable.
USAGE_RECORD_CHAT = LEGACY_API_USAGE_CHAT


def indexable(message: Message) -> bool:
    """Streaming messages wait: they are indexed once final (interrupted ones as checkpointed)."""
    return message.status in FINAL_STATUSES and message.chat_id != USAGE_RECORD_CHAT


@dataclass(frozen=True, slots=True)
class FoundHit:
    hit: SearchHit
    chat_title: str


@dataclass(frozen=True, slots=True)
class SearchResults:
    hits: list[FoundHit]
    total_estimate: int
    took_ms: float


class SearchService:
    def __init__(self, store: SearchStore, index: SearchIndex) -> None:
        self.store = store
        self.index = index

    async def search(
        self,
        user: User,
        query: str,
        *,
        limit: int = 20,
        offset: int = 0,
        chat_id: str | None = None,
        role: str | None = None,
    ) -> SearchResults:
        """The caller's chats and messages matching `query`, best first, with snippets."""
        if len(query) > MAX_QUERY_CHARS:
            raise ValidationError(f"q: at most {MAX_QUERY_CHARS} characters", field="q")
        text = query.strip()
        if not text:
            raise ValidationError("q: must not be empty", field="q")
        started = time.perf_counter()
        try:
            page = await self.index.search(
                user.id, text, limit=min(limit, MAX_LIMIT), offset=offset, chat_id=chat_id, role=role
            )
        except SearchIndexError as exc:
            log.warning("search failed: %s", exc)
            raise Unavailable("search is unavailable right now", code="search_unavailable") from None
        # Titles come from the store, so a renamed chat shows its current title, and a chat
        # deleted a moment ago (its documents not yet dropped) shows nothing.
        titles = await self.store.chat_titles(user.id, {hit.chat_id for hit in page.hits})
        hits = [FoundHit(hit, titles[hit.chat_id]) for hit in page.hits if hit.chat_id in titles]
        dropped = len(page.hits) - len(hits)
        took_ms = round((time.perf_counter() - started) * 1000, 2)
        return SearchResults(hits=hits, total_estimate=max(page.total_estimate - dropped, len(hits)),
                             took_ms=took_ms)
