"""Several processes (gunicorn workers) opening one fresh SQLite file at once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from gust.adapters.store.sqlite import SQLiteStore
from gust.adapters.store.sqlite_migrations import all_migrations


async def test_stores_starting_together_apply_each_migration_once(tmp_path: Path) -> None:
    # Each SQLiteStore has its own connections and writer thread, like a separate worker.
    for attempt in range(15):
        path = tmp_path / f"gust{attempt}.db"
        stores = [SQLiteStore(path) for _ in range(4)]
        results = await asyncio.gather(*(s.start() for s in stores), return_exceptions=True)
        for store in stores:
            await store.close()
        assert [r for r in results if isinstance(r, BaseException)] == []
        with sqlite3.connect(path) as conn:
            names = [row[0] for row in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        assert names == sorted(name for name, _ in all_migrations())
        assert version == len(names)


async def test_restart_applies_nothing_new(tmp_path: Path) -> None:
    path = tmp_path / "gust.db"
    store = SQLiteStore(path)
    await store.start()
    await store.close()
    again = SQLiteStore(path)
    await again.start()
    await again.ping()
    await again.close()
    with sqlite3.connect(path) as conn:
        count = conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
    assert count == len(all_migrations())
