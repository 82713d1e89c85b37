"""Group commit: writes queued together commit together, and a failing one fails alone."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gust.adapters.sqlite_threads import SQLiteThreads


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
