"""Group commit: writes queued together commit together, and a failing one fails alone.

Point operations: on the loop when the writer is idle, in order, never waiting for a lock."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gust.adapters.sqlite_threads import LOOP_CACHE_KIB, LOOP_CHECKPOINT_EVERY, SQLiteThreads
from tests.support.wait import until


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SQLiteThreads]:
    threads = SQLiteThreads(str(tmp_path / "t.sqlite"), name="t")
    threads.start()
    await threads.run_writer(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    yield threads
    threads.close()


def insert(k: int | None, v: str | None = "x") -> Callable[[sqlite3.Connection], int | None]:
    def fn(conn: sqlite3.Connection) -> int | None:
        conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (k, v))
        return k

    return fn


async def rows(db: SQLiteThreads) -> dict[int, str]:
    return dict(await db.read(lambda c: c.execute("SELECT k, v FROM t").fetchall()))


async def test_a_burst_commits_in_few_transactions(db: SQLiteThreads) -> None:
    statements: list[str] = []
    await db.run_writer(lambda c: c.set_trace_callback(statements.append))
    results = await asyncio.gather(*(db.write(insert(k)) for k in range(200)))
    assert results == list(range(200))
    assert sorted(await rows(db)) == list(range(200))
    # The first write goes alone; the 199 queued behind it share one transaction.
    assert statements.count("COMMIT") < 10


async def test_a_failing_write_rolls_back_only_itself(db: SQLiteThreads) -> None:
    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (k, v) VALUES (1000, 'half')")
        raise ValueError("refused")

    calls = [db.write(insert(k)) for k in range(5)]
    calls += [db.write(insert(2, "duplicate")), db.write(half_then_fail), db.write(insert(None, None))]
    calls += [db.write(insert(k)) for k in range(5, 10)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[:5] == list(range(5)) and results[8:] == list(range(5, 10))
    assert isinstance(results[5], sqlite3.IntegrityError)
    assert isinstance(results[6], ValueError)
    assert isinstance(results[7], sqlite3.IntegrityError)
    assert await rows(db) == {k: "x" for k in range(10)}


async def test_a_lone_failing_write_leaves_no_transaction_open(db: SQLiteThreads) -> None:
    await db.write(insert(1))
    with pytest.raises(sqlite3.IntegrityError):
        await db.write(insert(1, "again"))
    assert await db.write(insert(2)) == 2
    assert await rows(db) == {1: "x", 2: "x"}


# -- point operations ------------------------------------------------------------------


def where(log: list[str], name: str) -> Callable[[sqlite3.Connection], None]:
    def fn(conn: sqlite3.Connection) -> None:
        log.append(f"{name}@{threading.current_thread().name}")
        conn.execute("INSERT INTO t (v) VALUES (?)", (name,))

    return fn


async def test_a_point_write_runs_on_the_loop_when_the_writer_is_idle(db: SQLiteThreads) -> None:
    ran: list[str] = []
    await db.write(where(ran, "point"), point=True)
    await db.write(where(ran, "queued"))
    assert ran == ["point@MainThread", "queued@t-w_0"]
    assert sorted((await rows(db)).values()) == ["point", "queued"]
    point_read = await db.read(lambda c: threading.current_thread().name, point=True)
    assert point_read == "MainThread"


async def test_a_point_write_waits_its_turn_behind_queued_writes(db: SQLiteThreads) -> None:
    ran: list[str] = []

    def slow(conn: sqlite3.Connection) -> None:
        time.sleep(0.2)  # the writer thread is busy with this one
        where(ran, "first")(conn)

    first = asyncio.ensure_future(db.write(slow))
    await asyncio.sleep(0)
    await db.write(where(ran, "point"), point=True)
    await first
    assert ran == ["first@t-w_0", "point@t-w_0"]
    assert list((await rows(db)).values()) == ["first", "point"]


async def test_a_failing_point_write_rolls_back_and_leaves_no_transaction(db: SQLiteThreads) -> None:
    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (k, v) VALUES (1, 'half')")
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await db.write(half_then_fail, point=True)
    assert await db.write(insert(2), point=True) == 2
    assert await rows(db) == {2: "x"}


async def test_another_process_writing_sends_point_writes_to_the_thread(
    db: SQLiteThreads, tmp_path: Path
) -> None:
    """The loop never waits for a lock: the writer thread does, and the loop runs on."""
    other = sqlite3.connect(tmp_path / "t.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    ran: list[str] = []
    ticks = 0

    async def loop_is_free() -> None:
        nonlocal ticks
        while not ran:
            ticks += 1
            await asyncio.sleep(0.01)

    async def release() -> None:
        await asyncio.sleep(0.3)
        other.execute("COMMIT")

    await asyncio.gather(db.write(where(ran, "point"), point=True), loop_is_free(), release())
    other.close()
    assert ran == ["point@t-w_0"]
    assert ticks >= 10  # the loop ran while the write waited for the lock
    assert await rows(db) == {1: "point"}


async def test_the_writer_thread_checkpoints_the_wal_of_point_writes(db: SQLiteThreads) -> None:
    statements: list[str] = []
    await db.run_writer(lambda c: c.set_trace_callback(statements.append))
    for k in range(LOOP_CHECKPOINT_EVERY + 1):
        await db.write(insert(k), point=True)
    await until(lambda: "PRAGMA wal_checkpoint(PASSIVE)" in statements, timeout=1.0, interval=0.01)
    assert statements == ["PRAGMA wal_checkpoint(PASSIVE)"]  # nothing else went to the thread
    assert len(await rows(db)) == LOOP_CHECKPOINT_EVERY + 1


async def test_closing_with_a_checkpoint_scheduled_drops_it_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    threads = SQLiteThreads(str(tmp_path / "c.sqlite"), name="c")
    threads.start()
    await threads.run_writer(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    for k in range(LOOP_CHECKPOINT_EVERY):
        await threads.write(insert(k), point=True)
    threads.close()  # the checkpoint was scheduled by the last write and has not run
    await asyncio.sleep(0.05)
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []


async def test_the_loop_connection_keeps_a_small_page_cache(db: SQLiteThreads) -> None:
    size = await db.read(lambda c: c.execute("PRAGMA cache_size").fetchone()[0], point=True)
    assert size == -LOOP_CACHE_KIB  # in KiB; the thread connections keep SQLite's default
    assert await db.read(lambda c: c.execute("PRAGMA cache_size").fetchone()[0]) == -2000
