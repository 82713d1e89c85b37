"""SQLite off the event loop: one writer thread, a few reader threads, a connection each.

SQLite has one writer at a time; WAL readers never wait for it. Every query runs on a
worker thread, so the event loop never blocks on the disk. Used by the embedded store and
the embedded search index, each on its own file.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


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

    def start(self) -> None:
        """Create the thread pools (again after close(); a second call keeps them)."""
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-w")
            self._reader = ThreadPoolExecutor(self.readers, thread_name_prefix=f"{self.name}-r")

    def close(self) -> None:
        for pool in (self._writer, self._reader):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer = self._reader = None
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

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on a reader thread."""
        return await self._run(self._reader, fn)

    async def run_writer(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the writer thread, managing no transaction (migrations do their own)."""
        return await self._run(self._writer, fn)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on the writer thread inside BEGIN IMMEDIATE ... COMMIT."""

        def in_transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(self._writer, in_transaction)
