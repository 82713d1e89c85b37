"""SQLite mostly off the event loop: one writer thread, a few reader threads, a connection each.

SQLite has one writer at a time; WAL readers never wait for it. Queries run on a worker
thread, so the event loop never waits for the disk or a lock, except the point operations
below. Used by the embedded store and the embedded search index, each on its own file.

Writes are group-committed: the writes that queue up while the writer thread is busy run
next in one transaction, each inside its own savepoint, so a failing write rolls back only
itself while a burst of small writes (checkpoints of many streaming answers) pays for one
COMMIT instead of one each.

Point operations (one row by its key: a new message, a checkpoint, a user lookup) are the
exception: callers mark them, and they run on the event loop itself when nothing is queued
for the writer, on a connection that never waits for a lock (another process writing sends
them to the threads after all) and never checkpoints the WAL (the writer thread does, every
LOOP_CHECKPOINT_EVERY of them). Such a statement takes tens of microseconds; under load a
round trip through a thread took milliseconds (waiting for the GIL, then for a busy loop),
and a new stream makes several before its first token (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

T = TypeVar("T")

log = logging.getLogger(__name__)

# Writes per transaction: bounds how long one COMMIT holds the write lock.
MAX_GROUP = 256
# Point writes committed on the loop between two WAL checkpoints by the writer thread.
LOOP_CHECKPOINT_EVERY = 200
# Page cache of the loop connection, in KiB (SQLite's default is 2 MiB per connection).
# Point operations need the B-tree's inner pages, not the rows they wrote: with the
# default, checkpoints of long answers filled it with their own pages (2 MiB with 200
# open streams), and on a 520 MB store a checkpoint took 76 us instead of 61.
LOOP_CACHE_KIB = 512

_Write = tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[Any]"]


class SQLiteThreads:
    def __init__(
        self,
        path: str,
        *,
        name: str,
        readers: int = 2,
        busy_timeout: float = 30.0,
        foreign_keys: bool = False,
    ) -> None:
        self.path = path
        self.name = name
        self.readers = readers
        self.busy_timeout = busy_timeout
        self.foreign_keys = foreign_keys
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._pending: list[_Write] = []  # touched on the event loop only
        self._committing = False
        self._loop_conn: sqlite3.Connection | None = None  # point operations (event loop only)
        self._loop_commits = 0  # since the last WAL checkpoint
        self._checkpoint: asyncio.Future[Any] | None = None

    def start(self) -> None:
        """Create the thread pools (again after close(); a second call keeps them)."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-w")
            self._reader = ThreadPoolExecutor(self.readers, thread_name_prefix=f"{self.name}-r")

    def close(self) -> None:
        if self._checkpoint is not None:  # not started yet: there is no writer left to run it
            self._checkpoint.cancel()
        for pool in (self._writer, self._reader):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer = self._reader = None
        self._pending, self._committing = [], False
        self._loop_conn, self._loop_commits = None, 0
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
        )
        for attempt in range(100):
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                # Switching a new file to WAL answers "locked" at once, without the busy
                # timeout, while another process (a worker booting alongside) does the same.
                if "locked" not in str(exc) or attempt == 99:
                    raise
                time.sleep(0.05)
        conn.execute("PRAGMA synchronous=NORMAL")
        if self.foreign_keys:
            conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        with self._lock:
            self._connections.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    async def _run(self, pool: ThreadPoolExecutor | None, fn: Callable[[sqlite3.Connection], T]) -> T:
        if pool is None:
            raise RuntimeError(f"{self.name} ({self.path}) used before start()")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pool, lambda: fn(self._conn()))

    async def read(self, fn: Callable[[sqlite3.Connection], T], *, point: bool = False) -> T:
        """Run `fn(conn)` on a reader thread; `point`: a lookup by key, run on the loop."""
        if point and self._reader is not None:
            try:
                return fn(self._on_loop())
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise
                # Locked for a moment (another process recovering or truncating the WAL):
                # a reader thread waits for it.
        return await self._run(self._reader, fn)

    def _on_loop(self) -> sqlite3.Connection:
        if self._loop_conn is None:
            conn = self._connect()
            conn.execute("PRAGMA busy_timeout=0")  # the loop never waits for a lock
            conn.execute("PRAGMA wal_autocheckpoint=0")  # nor copies the WAL back
            conn.execute(f"PRAGMA cache_size=-{LOOP_CACHE_KIB}")
            self._loop_conn = conn
        return self._loop_conn

    async def run_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the writer thread, managing no transaction (migrations do their own)."""
        return await self._run(self._writer, fn)

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, point: bool = False) -> T:
        """Run `fn(conn)` on the writer thread inside a transaction; return once committed.

        `fn` sees every write queued before it; if it raises, its changes are rolled back
        and the exception is raised here, and the other writes of its group still commit.
        `point`: `fn` touches one row by its key; it runs on the loop when nothing is
        queued (still after every write queued before it, and in a transaction of its own).
        """
        if self._writer is None:
            raise RuntimeError(f"{self.name} ({self.path}) used before start()")
        loop = asyncio.get_running_loop()
        if point and not self._committing and not self._pending:
            done, value = self._write_on_loop(fn)
            if done:
                if self._loop_commits >= LOOP_CHECKPOINT_EVERY and self._checkpoint is None:
                    self._checkpoint_wal()
                return cast(T, value)
        future: asyncio.Future[T] = loop.create_future()
        self._pending.append((fn, future))
        if not self._committing:
            self._next_group(loop)
        return await future

    def _write_on_loop(self, fn: Callable[[sqlite3.Connection], Any]) -> tuple[bool, Any]:
        """(True, result), or (False, None) when another process holds the write lock."""
        try:
            ((ok, value),) = _commit_group(self._on_loop(), [fn])
        except sqlite3.OperationalError as exc:  # only BEGIN raises: the rest is in outcomes
            if not _busy(exc):
                raise
            return False, None  # the writer thread will wait for the lock
        if not ok:
            raise value
        self._loop_commits += 1
        return True, value

    def _checkpoint_wal(self) -> None:
        """Copy the WAL back into the database on the writer thread (PASSIVE: waits for nobody)."""
        self._loop_commits = 0

        def done(task: asyncio.Future[Any]) -> None:
            self._checkpoint = None
            if not task.cancelled() and task.exception() is not None:
                log.warning("WAL checkpoint of %s failed: %s", self.path, task.exception())

        self._checkpoint = asyncio.ensure_future(
            self.run_writer(lambda conn: conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
        )
        self._checkpoint.add_done_callback(done)

    # Handed to the writer thread straight from write(), and answered with one
    # call_soon_threadsafe: no task and no executor future in between, so a write costs
    # two turns of a busy event loop, not four (measured on the first-token path).
    def _next_group(self, loop: asyncio.AbstractEventLoop) -> None:
        group, self._pending = self._pending[:MAX_GROUP], self._pending[MAX_GROUP:]
        self._committing = True
        try:
            if self._writer is None:  # closed while writes were queued
                raise RuntimeError(f"{self.name} ({self.path}) is closed")
            self._writer.submit(self._commit_in_thread, loop, group)
        except RuntimeError as exc:  # closed, or the pool is shutting down
            self._group_done(loop, group, [(False, exc)] * len(group))

    def _commit_in_thread(self, loop: asyncio.AbstractEventLoop, group: list[_Write]) -> None:
        try:
            outcomes = _commit_group(self._conn(), [fn for fn, _ in group])
        except Exception as exc:  # no connection: nothing of the group ran
            outcomes = [(False, exc)] * len(group)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(self._group_done, loop, group, outcomes)

    def _group_done(
        self, loop: asyncio.AbstractEventLoop, group: list[_Write], outcomes: list[tuple[bool, Any]]
    ) -> None:
        for (_, future), (ok, value) in zip(group, outcomes, strict=True):
            if future.done():
                continue  # its caller was cancelled; the write itself ran (or failed)
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
        if self._pending:
            self._next_group(loop)
        else:
            self._committing = False


def _busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _commit_group(
    conn: sqlite3.Connection, group: list[Callable[[sqlite3.Connection], Any]]
) -> list[tuple[bool, Any]]:
    """Run a group of writes in one BEGIN IMMEDIATE ... COMMIT: outcomes, one per write.

    On the writer thread, or on the loop for a point write (a group of one). Only BEGIN
    raises (another process holds the lock); every later failure is in the outcomes.
    """
    outcomes: list[tuple[bool, Any]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        if len(group) == 1:  # alone, the transaction is its savepoint
            try:
                outcomes.append((True, group[0](conn)))
            except Exception as exc:
                conn.execute("ROLLBACK")
                return [(False, exc)]
        else:
            for fn in group:
                conn.execute("SAVEPOINT gust_write")
                try:
                    outcomes.append((True, fn(conn)))
                except Exception as exc:
                    conn.execute("ROLLBACK TO gust_write")
                    outcomes.append((False, exc))
                conn.execute("RELEASE gust_write")
        conn.execute("COMMIT")
    except BaseException as exc:
        # Nothing of the group is stored (the commit failed, or an error that SQLite
        # answers by rolling back the whole transaction): every writer learns it.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if not isinstance(exc, Exception):
            raise
        return [(False, exc)] * len(group)
    return outcomes
