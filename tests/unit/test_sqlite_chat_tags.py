"""SQLite keeps chat tags in an indexed table through triggers; the migration backfills it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from gust.adapters.store.sqlite import SQLiteStore
from gust.adapters.store.sqlite_migrations import sql_statements
from gust.domain.ids import new_id
from gust.domain.models import Chat


def test_a_trigger_body_stays_one_statement() -> None:
    script = "CREATE TABLE a (x);\nCREATE TRIGGER t AFTER INSERT ON a BEGIN\n DELETE FROM a; SELECT 1;\nEND;"
    statements = sql_statements(script)
    assert len(statements) == 2
    assert statements[1].strip().startswith("CREATE TRIGGER") and statements[1].strip().endswith("END;")


async def test_the_tag_index_follows_writes_and_is_backfilled(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    store = SQLiteStore(path)
    await store.start()
    chat = Chat(id=new_id(), user_id="u1", team_id="t", title="t", model=None, created_at=1, updated_at=1,
                tags=["work"])
    await store.create_chat(chat)
    assert [c.id for c in await store.list_chats("u1", limit=5, tag="work")] == [chat.id]
    await store.update_chat("u1", chat.id, {"tags": ["home"]})
    assert await store.list_chats("u1", limit=5, tag="work") == []
    assert [c.id for c in await store.list_chats("u1", limit=5, tag="home")] == [chat.id]
    await store.close()

    # As a database from before the index: the migration fills it from the chats.
    conn = sqlite3.connect(path)
    conn.executescript(
        "DROP TRIGGER chat_tags_insert; DROP TRIGGER chat_tags_update; DROP TRIGGER chat_tags_delete;"
        "DROP TABLE chat_tags; DELETE FROM schema_migrations WHERE name = '0510_chat_tags';"
    )
    conn.close()
    again = SQLiteStore(path)
    await again.start()
    assert [c.id for c in await again.list_chats("u1", limit=5, tag="home")] == [chat.id]
    await again.delete_chat("u1", chat.id)
    assert await again.list_chats("u1", limit=5, tag="home") == []
    await again.close()
