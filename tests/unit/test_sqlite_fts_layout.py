"""SQLite FTS5 index layout: shards of users, the recorded shard size, rebuilding old files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gust.adapters.search.sqlite_fts import SQLiteSearchIndex
from gust.domain.ids import new_id
from gust.domain.models import Chat
from gust.services.search import chat_document


def chat(user: str, title: str) -> Chat:
    return Chat(id=new_id(), user_id=user, team_id="t", title=title, model=None, created_at=1.0,
                updated_at=1.0)


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'search_fts_%'")
                if r[0].count("_") == 2}


async def test_users_fill_shards_in_order_and_stay_apart(tmp_path: Path) -> None:
    path = tmp_path / "search.db"
    index = SQLiteSearchIndex(path, users_per_shard=2)
    await index.start()
    users = [f"user{i}" for i in range(5)]  # ordinals 1..5: shards 0, 1, 1, 2, 2
    await index.upsert([chat_document(chat(u, f"shared word {u}")) for u in users])
    assert tables(path) == {"search_fts_0", "search_fts_1", "search_fts_2"}
    for u in users:
        page = await index.search(u, "shared", limit=10)
        assert [h.snippet for h in page.hits] == [f"<mark>shared</mark> word {u}"]
    await index.close()


async def test_the_shard_size_is_fixed_by_the_file(tmp_path: Path) -> None:
    path = tmp_path / "search.db"
    first = SQLiteSearchIndex(path, users_per_shard=3)
    await first.start()
    await first.close()
    again = SQLiteSearchIndex(path, users_per_shard=50)
    await again.start()
    assert again.users_per_shard == 3  # user ordinals map to the same tables as before
    await again.close()


async def test_an_older_layout_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "search.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE VIRTUAL TABLE search_fts USING fts5(title, content)")
        db.execute("CREATE TABLE search_docs (rowid INTEGER PRIMARY KEY, doc_id TEXT)")
        db.execute("INSERT INTO search_docs (doc_id) VALUES ('m_old')")
        db.execute("PRAGMA user_version = 1")
    index = SQLiteSearchIndex(path)
    await index.start()
    assert await index.count() == 0  # derived data: the start-up reconcile sends it again
    await index.upsert([chat_document(chat("u", "fresh"))])
    assert len((await index.search("u", "fresh", limit=5)).hits) == 1
    await index.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'search_fts'").fetchone()[0] == 0
