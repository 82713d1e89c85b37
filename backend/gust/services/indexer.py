"""The search indexer: ships pending records and deletions to the index, in batches.

Writes mark chats and messages `pending`; this task sends them, marks them indexed only if
they did not change meanwhile, applies tombstones after the upserts of the same batch (so
a record deleted while its batch was in flight leaves no document), and retries with
exponential backoff. One process at a time writes to the index (a lock in the store),
which also keeps a reconcile batch and an indexer batch from interleaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from gust.domain.ids import new_id
from gust.observability import Metrics
from gust.ports.search import SearchIndex, SearchIndexError, message_doc_id
from gust.ports.search_store import SearchStore, Tombstone
from gust.services.search import chat_document, indexable, message_document

log = logging.getLogger(__name__)
T = TypeVar("T")

INDEX_LOCK = "search-index"


def lock_owner(role: str) -> str:
    """A lock owner unique to this object in this process on this host."""
    return f"{socket.gethostname()}:{os.getpid()}:{role}:{new_id()}"


@dataclass(slots=True)
class CycleResult:
    sent: int = 0
    marked: int = 0
    tombstones: int = 0
    skipped: bool = False  # another process holds the index lock


@dataclass(slots=True)
class IndexerState:
    failures: int = 0  # consecutive failed cycles
    last_error: str | None = None
    last_success_at: float | None = None
    sent_total: int = 0


class Indexer:
    def __init__(
        self,
        store: SearchStore,
        index: SearchIndex,
        *,
        metrics: Metrics | None = None,
        batch_size: int = 500,
        interval: float = 1.0,
        max_backoff: float = 60.0,
        backlog_threshold: int = 10_000,
        lock_ttl: float = 60.0,
        max_batches_per_cycle: int = 20,
        reconcile_on_start: bool = False,
    ) -> None:
        self.store = store
        self.index = index
        self.metrics = metrics or Metrics()  # a command or test without the process's metrics
        self.batch_size = batch_size
        self.interval = interval
        self.max_backoff = max_backoff
        self.backlog_threshold = backlog_threshold
        self.lock_ttl = lock_ttl
        self.max_batches_per_cycle = max_batches_per_cycle
        self.state = IndexerState()
        self.index_started = True  # False: index.start() failed; retried before each cycle
        self.reconcile_on_start = reconcile_on_start
        self.owner = lock_owner("indexer")
        self._cycle = asyncio.Lock()
        self._local_turns = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = asyncio.Event()

    # -- background ----------------------------------------------------------------
    def start(self) -> None:
        """Run the indexing loop in the background."""
        self._stopping.clear()
        self.spawn(self._loop, "search-indexer")

    def spawn(self, job: Callable[[], Coroutine[Any, Any, Any]], name: str) -> None:
        """Run another background job (e.g. the start-up reconcile) that stop() cancels."""
        self._tasks.append(asyncio.create_task(job(), name=name))

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            delay = self.interval
            try:
                result = await self.run_once(wait=False)
                if result.sent + result.tombstones >= self.batch_size * self.max_batches_per_cycle:
                    delay = 0  # more is waiting: go on at once
            except Exception:  # noqa: BLE001 - recorded in state and logged by run_once
                delay = min(self.interval * 2 ** min(self.state.failures, 16), self.max_backoff)
                delay *= random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    # -- one cycle -----------------------------------------------------------------
    async def run_once(self, *, wait: bool = True) -> CycleResult:
        """Ship pending records and tombstones (up to max_batches_per_cycle batches).

        With wait=False the cycle gives up after a short wait when another process holds
        the index lock (that process is indexing).
        Raises (after recording the failure) when the index or the store fails.
        """
        async with self._cycle:
            total = CycleResult()
            try:
                await self.ensure_index()
                for _ in range(self.max_batches_per_cycle):
                    if not await self._has_work():
                        break
                    result = await self.with_index_lock(self.owner, self._batch, wait=True if wait else 2.0)
                    if result is None:
                        total.skipped = True
                        break
                    total.sent += result.sent
                    total.marked += result.marked
                    total.tombstones += result.tombstones
                    if result.sent + result.tombstones == 0:
                        break
            except Exception as exc:
                self.state.failures += 1
                self.state.last_error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                log.warning(
                    "search indexer failed (%d in a row): %s", self.state.failures, self.state.last_error
                )
                await self._report_pending()
                raise
            self.state.failures = 0
            self.state.last_error = None
            self.state.last_success_at = time.time()
            self.state.sent_total += total.sent
            await self._report_pending()
            return total

    async def ensure_index(self) -> None:
        """Start the index (create it, apply its settings) if that failed at start-up."""
        if not self.index_started:
            await self.index.start()
            self.index_started = True

    async def _has_work(self) -> bool:
        return bool(
            await self.store.list_search_tombstones(limit=1)
            or await self.store.list_pending_chats(limit=1)
            or await self.store.list_pending_messages(limit=1)
        )

    async def _batch(self) -> CycleResult:
        # Read inside the lock: no other process can apply a tombstone between this read
        # and the upsert below.
        chats = await self.store.list_pending_chats(limit=self.batch_size)
        room = self.batch_size - len(chats)
        messages = await self.store.list_pending_messages(limit=room) if room > 0 else []
        docs = [chat_document(c) for c in chats] + [message_document(m) for m in messages if indexable(m)]
        await self.index.upsert(docs)
        marked = await self.store.mark_chats_indexed(chats) if chats else 0
        marked += await self.store.mark_messages_indexed(messages) if messages else 0
        # After the upserts: a deletion committed before this read is applied after them.
        tombstones = await self.store.list_search_tombstones(limit=self.batch_size)
        await self.apply_tombstones(tombstones)
        return CycleResult(sent=len(docs), marked=marked, tombstones=len(tombstones))

    async def apply_tombstones(self, tombstones: list[Tombstone]) -> None:
        chats_by_user: dict[str, list[str]] = {}
        message_docs: list[str] = []
        for t in tombstones:
            if t.kind == "chat":
                chats_by_user.setdefault(t.user_id, []).append(t.target_id)
            else:
                message_docs.append(message_doc_id(t.target_id))
        for user_id, chat_ids in chats_by_user.items():
            await self.index.delete_chat_documents(user_id, chat_ids)
        await self.index.delete(message_docs)
        await self.store.clear_search_tombstones([t.id for t in tombstones])

    async def with_index_lock(
        self, owner: str, fn: Callable[[], Awaitable[T]], *, wait: bool | float
    ) -> T | None:
        """Run `fn` holding the index lock. wait=True: wait up to twice the lock's TTL, then
        raise; a number: wait that many seconds, then return None (someone else is busy)."""
        # In this process, turns are taken in order (asyncio.Lock is FIFO): a long reconcile
        # releases the lock between batches and the indexer gets its turn at once.
        async with self._local_turns:
            limit = self.lock_ttl * 2 if wait is True else float(wait)
            deadline = time.monotonic() + limit
            while not await self.store.acquire_lock(INDEX_LOCK, owner, self.lock_ttl):
                if time.monotonic() >= deadline:
                    if wait is True:
                        raise SearchIndexError("the search index lock stayed busy; is another process stuck?")
                    return None
                await asyncio.sleep(0.05)
            try:
                return await fn()
            finally:
                with contextlib.suppress(Exception):
                    await self.store.release_lock(INDEX_LOCK, owner)

    # -- health --------------------------------------------------------------------
    async def _report_pending(self) -> int | None:
        try:
            pending = await self.store.count_search_pending()
        except Exception:  # noqa: BLE001 - the store's own health check reports it
            return None
        self.metrics.search_pending.set(pending)
        return pending

    async def health(self) -> dict[str, Any]:
        """For /health/ready: raises when the index is down; degraded when failing or behind."""
        await self.index.ping()
        pending = await self._report_pending()
        detail: dict[str, Any] = {"pending": pending}
        if self.state.failures:
            detail["status"] = "degraded"
            detail["detail"] = f"indexer failing ({self.state.failures} attempts): {self.state.last_error}"
        elif pending is not None and pending >= self.backlog_threshold:
            detail["status"] = "degraded"
            detail["detail"] = f"indexer backlog: {pending} documents waiting"
        return detail
