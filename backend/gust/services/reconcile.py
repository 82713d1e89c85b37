"""Reconcile: repair drift between the store and the search index, in bounded memory.

Runs at start-up (in the background) and as `python -m gust reindex [--full]`. Walks the
store with an id cursor, one batch at a time, and sends what the index lacks or holds
stale (compared by fingerprint); then walks the index and deletes documents whose source
is gone. One reconcile at a time across processes (a lock in the store); each batch holds
the index lock, so it never interleaves with an indexer batch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from functools import partial

from gust.domain.errors import Conflict
from gust.domain.models import Chat, Message
from gust.ports.search import DocRef, IndexDocument
from gust.services.indexer import Indexer, lock_owner
from gust.services.search import chat_document, indexable, message_document

log = logging.getLogger(__name__)

RECONCILE_LOCK = "search-reconcile"


@dataclass(slots=True)
class ReconcileReport:
    chats: int = 0
    messages: int = 0
    sent: int = 0
    marked: int = 0
    orphans_deleted: int = 0
    tombstones: int = 0
    seconds: float = 0.0


class Reconciler:
    def __init__(self, indexer: Indexer, *, full: bool = False, lock_ttl: float = 300.0) -> None:
        self.indexer = indexer
        self.store = indexer.store
        self.index = indexer.index
        self.batch_size = indexer.batch_size
        self.full = full
        self.lock_ttl = lock_ttl
        self.owner = lock_owner("reconcile")
        self.index_owner = lock_owner("reconcile-batch")
        self.report = ReconcileReport()

    async def run_at_startup(self) -> None:
        """The start-up pass: logged, never raised (the indexer goes on either way)."""
        try:
            report = await self.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the next start or `gust reindex` retries
            log.warning("start-up search reconcile failed: %s", exc)
            return
        if report is None:
            log.info("start-up search reconcile skipped: another process is reconciling")

    async def run(self, *, wait_for_lock: float = 0.0) -> ReconcileReport | None:
        """Reconcile once; None if another process holds the reconcile lock (after waiting
        up to `wait_for_lock` seconds)."""
        deadline = time.monotonic() + wait_for_lock
        while not await self.store.acquire_lock(RECONCILE_LOCK, self.owner, self.lock_ttl):
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(min(1.0, max(deadline - time.monotonic(), 0.01)))
        started = time.monotonic()
        try:
            await self.indexer.ensure_index()
            await self._tombstones()
            await self._walk(self._chat_batch)
            await self._walk(self._message_batch)
            self.report.orphans_deleted = await self.index.prune(self._orphans, batch_size=self.batch_size)
        finally:
            await self.store.release_lock(RECONCILE_LOCK, self.owner)
        self.report.seconds = round(time.monotonic() - started, 3)
        r = self.report
        log.info(
            "search reconcile%s: %d chats and %d messages checked, %d sent, %d marked, "
            "%d orphans deleted, %d tombstones applied in %.1fs",
            " (full)" if self.full else "", r.chats, r.messages, r.sent, r.marked, r.orphans_deleted,
            r.tombstones, r.seconds,
        )
        return r

    async def _renew(self) -> None:
        if not await self.store.acquire_lock(RECONCILE_LOCK, self.owner, self.lock_ttl):
            raise Conflict("another process took over the search reconcile lock", code="reconcile_lost")

    async def _tombstones(self) -> None:
        while True:
            tombstones = await self.store.list_search_tombstones(limit=self.batch_size)
            if not tombstones:
                return
            await self.indexer.with_index_lock(
                self.index_owner, partial(self.indexer.apply_tombstones, tombstones), wait=True
            )
            self.report.tombstones += len(tombstones)

    async def _walk(self, batch: Callable[[str | None], Awaitable[str | None]]) -> None:
        after: str | None = None
        while True:
            await self._renew()
            after = await self.indexer.with_index_lock(self.index_owner, partial(batch, after), wait=True)
            if after is None:
                return

    async def _chat_batch(self, after: str | None) -> str | None:
        chats = await self.store.walk_chats(after=after, limit=self.batch_size)
        if not chats:
            return None
        self.report.chats += len(chats)
        await self._repair(chats, [chat_document(c) for c in chats])
        return chats[-1].id

    async def _message_batch(self, after: str | None) -> str | None:
        messages = await self.store.walk_messages(after=after, limit=self.batch_size)
        if not messages:
            return None
        self.report.messages += len(messages)
        final = [m for m in messages if indexable(m)]
        await self._repair(final, [message_document(m) for m in final])
        return messages[-1].id

    async def _repair(self, records: Sequence[Chat] | Sequence[Message], docs: list[IndexDocument]) -> None:
        held = await self.index.fingerprints([d.id for d in docs])
        stale = [d for d in docs if self.full or held.get(d.id) != d.fingerprint]
        await self.index.upsert(stale)
        self.report.sent += len(stale)
        unmarked = [r for r in records if r.index_state != "indexed"]
        if not unmarked:
            return
        if isinstance(unmarked[0], Chat):
            chats = [r for r in unmarked if isinstance(r, Chat)]
            self.report.marked += await self.store.mark_chats_indexed(chats)
        else:
            messages = [r for r in unmarked if isinstance(r, Message)]
            self.report.marked += await self.store.mark_messages_indexed(messages)

    async def _orphans(self, refs: Sequence[DocRef]) -> Collection[str]:
        await self._renew()
        chat_ids = {r.chat_id for r in refs if r.kind == "chat"}
        message_ids = {r.message_id for r in refs if r.kind == "message" and r.message_id}
        chats = await self.store.existing_chat_ids(chat_ids)
        messages = await self.store.existing_message_ids(message_ids)
        return [
            r.id
            for r in refs
            if (r.kind == "chat" and r.chat_id not in chats)
            or (r.kind == "message" and r.message_id not in messages)
        ]
