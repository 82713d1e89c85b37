"""Search on Meilisearch through meilisearch-python-sdk's AsyncClient."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict
from functools import cache
from typing import Any

import httpx2
import pydantic
from meilisearch_python_sdk import AsyncClient
from meilisearch_python_sdk.errors import MeilisearchApiError, MeilisearchError, MeilisearchTimeoutError
from meilisearch_python_sdk.index import AsyncIndex
from meilisearch_python_sdk.models.settings import MeilisearchSettings
from meilisearch_python_sdk.models.task import TaskInfo

from gust.ports.search import (
    MARK_END,
    MARK_START,
    DocRef,
    IndexDocument,
    OrphanFinder,
    SearchHit,
    SearchIndexError,
    SearchPage,
    snippet_html,
)

log = logging.getLogger(__name__)

SEARCHABLE = ["title", "content"]  # in this order: a title match ranks above a content match
FILTERABLE = ["user_id", "team_id", "chat_id", "role", "kind"]
SORTABLE = ["created_at"]
RETRIEVE = ["id", "kind", "chat_id", "message_id", "role", "created_at", "title", "content"]
CROP_WORDS = 24
_FAILURES = (MeilisearchError, httpx2.HTTPError, pydantic.ValidationError)

# SQLite FTS5's unicode61 tokenizer splits words on every punctuation, symbol, space and
# control character; Meilisearch's tokenizer keeps many of them inside words (`<`, `>`, `=`,
# `|`, `$`, `~`, `^`, no-break spaces, arrows, math and currency signs, box drawing, emoji),
# so `Code <b>review</b>` was not found by `review`. Adding them as separator tokens gives
# both engines the same words. The blocks are those everyday text and code are written with;
# each token costs every search a little (Meilisearch 1.50 on a 2-core machine: about 1.7 ms
# per 1,000 tokens; these 3,539 make a search ~6 ms slower), so the rarely typed blocks
# (musical, ancient scripts, mahjong...) stay out.
_SEPARATOR_BLOCKS = (
    (0x0021, 0x00FF),  # ASCII and Latin-1 punctuation, symbols, no-break space, C1 controls
    (0x2000, 0x27BF),  # general punctuation and spaces ... arrows, math, technical, box
    # drawing, geometric shapes, miscellaneous symbols, dingbats
    (0x3000, 0x303F),  # CJK symbols and punctuation (ideographic space)
    (0x1F300, 0x1FAFF),  # emoji: pictographs, emoticons, transport, supplemental symbols
)
_SEPARATOR_CATEGORIES = ("P", "S", "Z", "Cc")


@cache
def separator_tokens() -> tuple[str, ...]:
    """The characters of _SEPARATOR_BLOCKS that FTS5's unicode61 treats as separators."""
    return tuple(
        chr(cp)
        for first, last in _SEPARATOR_BLOCKS
        for cp in range(first, last + 1)
        if unicodedata.category(chr(cp)).startswith(_SEPARATOR_CATEGORIES)
    )


def quote(value: str) -> str:
    """A string literal of Meilisearch's filter syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _names(attributes: Sequence[Any] | None) -> list[str]:
    """Attribute names, whether Meilisearch returned plain names or attribute objects."""
    names = []
    for item in attributes or []:
        if isinstance(item, str):
            names.append(item)
        else:
            names.extend(getattr(item, "attribute_patterns", None) or [])
    return sorted(names)


class MeilisearchIndex:
    """SearchIndex on one Meilisearch index. Every write waits for its task and raises
    SearchIndexError when the task failed, so the indexer never marks a lost batch done."""

    name = "meilisearch"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        index_uid: str = "gust",
        timeout: float = 10.0,
        task_timeout: float = 60.0,
        settings_wait: float = 10.0,
        batch_size: int = 1000,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.index_uid = index_uid
        self.timeout = timeout
        self.task_timeout = task_timeout
        self.settings_wait = settings_wait
        self.batch_size = batch_size
        self._client: AsyncClient | None = None

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            raise RuntimeError("MeilisearchIndex used before start()")
        return self._client

    @property
    def index(self) -> AsyncIndex:
        return self.client.index(self.index_uid)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        if self._client is None:  # start() is retried after a failure: keep the client
            self._client = AsyncClient(self.url, self.api_key, timeout=max(1, round(self.timeout)))
        try:
            try:
                await self.client.get_index(self.index_uid)
            except MeilisearchApiError as exc:
                if "index_not_found" not in exc.code:
                    raise
                await self.client.create_index(
                    self.index_uid, primary_key="id", timeout_in_ms=int(self.task_timeout * 1000)
                )
            await self.apply_settings()
        except _FAILURES as exc:
            raise SearchIndexError(f"meilisearch: {exc}") from exc

    async def apply_settings(self) -> None:
        """Bring the index's settings to ours, only when they differ.

        The settings held by the index are its version: an index made by an older Gust (no
        separator tokens, say) gets the new settings at the next start, and Meilisearch
        re-indexes its documents once under them. A settings task still running (a start
        that stopped waiting, another worker) is waited for, not enqueued again. Re-indexing
        a large index takes a while: the start waits `settings_wait` seconds at most, then
        goes on (searches use the old settings until Meilisearch is done, and writes queue
        behind it in Meilisearch's task queue).
        """
        current = await self.index.get_settings()
        if (
            current.searchable_attributes == SEARCHABLE
            and _names(current.filterable_attributes) == sorted(FILTERABLE)
            and _names(current.sortable_attributes) == sorted(SORTABLE)
            and set(current.separator_tokens or ()) == set(separator_tokens())
        ):
            return
        running = await self.client.get_tasks(
            index_ids=[self.index_uid], types="settingsUpdate", statuses=["enqueued", "processing"]
        )
        if running.results:
            task_uid = running.results[0].uid  # the newest first
            log.info("meilisearch index %s: waiting for its settings update (task %d)",
                     self.index_uid, task_uid)
        else:
            log.info("meilisearch index %s: applying the search settings (it re-indexes its documents)",
                     self.index_uid)
            settings = MeilisearchSettings(
                searchable_attributes=SEARCHABLE,
                filterable_attributes=list(FILTERABLE),
                sortable_attributes=SORTABLE,
                separator_tokens=list(separator_tokens()),
            )
            task_uid = (await self.index.update_settings(settings)).task_uid
        try:
            await self._wait(task_uid, limit=self.settings_wait)
        except MeilisearchTimeoutError:
            log.warning("meilisearch index %s is still re-indexing under its new settings (task %d); "
                        "searches use the old ones until it is done", self.index_uid, task_uid)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def ping(self) -> None:
        try:
            health = await self.client.health()
        except _FAILURES as exc:
            raise SearchIndexError(f"meilisearch: {exc}") from exc
        if health.status != "available":
            raise SearchIndexError(f"meilisearch is {health.status}")

    async def _wait(self, task: TaskInfo | int, *, limit: float | None = None) -> None:
        uid = task if isinstance(task, int) else task.task_uid
        failure = await task_failure(self.client, uid, limit or self.task_timeout)
        if failure:
            raise SearchIndexError(failure)

    # -- writes --------------------------------------------------------------------
    async def upsert(self, documents: Sequence[IndexDocument]) -> None:
        if not documents:
            return
        try:
            tasks = []
            for start in range(0, len(documents), self.batch_size):
                batch = [asdict(doc) for doc in documents[start : start + self.batch_size]]
                tasks.append(await self.index.add_documents(batch, primary_key="id"))
            for task in tasks:  # Meilisearch runs them in order; each one must have succeeded
                await self._wait(task)
        except _FAILURES as exc:
            raise SearchIndexError(f"meilisearch: {exc}") from exc

    async def delete(self, doc_ids: Sequence[str]) -> None:
        if not doc_ids:
            return
        try:
            await self._wait(await self.index.delete_documents(list(doc_ids)))
        except _FAILURES as exc:
            raise SearchIndexError(f"meilisearch: {exc}") from exc

    async def delete_chat_documents(self, user_id: str, chat_ids: Sequence[str]) -> None:
        if not chat_ids:
            return
        chats = ", ".join(quote(c) for c in chat_ids)
        where = f"user_id = {quote(user_id)} AND chat_id IN [{chats}]"
        try:
            await self._wait(await self.index.delete_documents_by_filter(where))
        except _FAILURES as exc:
            raise SearchIndexError(f"meilisearch: {exc}") from exc

    # -- reconcile -----------------------------------------------------------------
    async def fingerprints(self, doc_ids: Sequence[str]) -> dict[str, str]:
        if not doc_ids:
            return {}
        try:
            found = await self.index.get_documents(
                ids=list(doc_ids), fields=["id", "fingerprint"], limit=len(doc_ids)
            )
        except _FAILURES as exc:
            raise SearchIndexError(f"meilisearch: {exc}") from exc
        return {str(d["id"]): str(d.get("fingerprint", "")) for d in found.results}

    async def prune(self, find_orphans: OrphanFinder, *, batch_size: int) -> int:
        offset = 0
        removed = 0
        fields = ["id", "kind", "user_id", "chat_id", "message_id"]
        while True:
            try:
                page = await self.index.get_documents(offset=offset, limit=batch_size, fields=fields)
            except _FAILURES as exc:
                raise SearchIndexError(f"meilisearch: {exc}") from exc
            if not page.results:
                return removed
            refs = [
                DocRef(id=str(d["id"]), kind=d.get("kind", "message"), user_id=str(d.get("user_id", "")),
                       chat_id=str(d.get("chat_id", "")), message_id=d.get("message_id"))
                for d in page.results
            ]
            orphans = await find_orphans(refs)
            if orphans:
                await self.delete(list(orphans))
                removed += len(orphans)
            # Deleted documents leave the listing: the next page starts that much earlier.
            offset += len(page.results) - len(orphans)

    async def count(self, user_id: str | None = None) -> int:
        try:
            if user_id is None:
                stats = await self.index.get_stats()
                return stats.number_of_documents
            where = f"user_id = {quote(user_id)}"
            page = await self.index.get_documents(filter=where, limit=1, fields=["id"])
        except _FAILURES as exc:
            raise SearchIndexError(f"meilisearch: {exc}") from exc
        return page.total

    # -- queries -------------------------------------------------------------------
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
        filters = [f"user_id = {quote(user_id)}"]  # always: no caller can search another user's data
        if chat_id is not None:
            filters.append(f"chat_id = {quote(chat_id)}")
        if role is not None:
            filters.append(f"role = {quote(role)}")
        try:
            result = await self.index.search(
                query,
                offset=offset,
                limit=limit,
                filter=" AND ".join(filters),
                attributes_to_retrieve=RETRIEVE,
                attributes_to_highlight=SEARCHABLE,
                attributes_to_crop=["content"],
                crop_length=CROP_WORDS,
                crop_marker="…",
                highlight_pre_tag=MARK_START,
                highlight_post_tag=MARK_END,
                matching_strategy="all",
            )
        except _FAILURES as exc:
            raise SearchIndexError(f"meilisearch: {exc}") from exc
        hits = []
        for raw in result.hits:
            kind = raw.get("kind", "message")
            formatted = raw.get("_formatted") or {}
            field = "title" if kind == "chat" else "content"
            hits.append(
                SearchHit(
                    doc_id=str(raw["id"]),
                    kind=kind,
                    chat_id=str(raw.get("chat_id", "")),
                    message_id=raw.get("message_id"),
                    role=raw.get("role"),
                    snippet=snippet_html(str(formatted.get(field) or raw.get(field) or "")),
                    created_at=float(raw.get("created_at", 0.0)),
                )
            )
        return SearchPage(hits=hits, total_estimate=result.estimated_total_hits or len(hits))


async def task_failure(client: AsyncClient, uid: int, wait_s: float) -> str | None:
    """Wait for a Meilisearch task; None when it succeeded, else what went wrong."""
    result = await client.wait_for_task(uid, timeout_in_ms=int(wait_s * 1000), interval_in_ms=25)
    if result.status == "succeeded":
        return None
    error = result.error or {}
    code, message = error.get("code", "unknown"), error.get("message", "")
    return f"meilisearch task {uid} {result.status}: {code}: {message}"
