"""Search index state in the SQLite store: pending records, tombstones, cursor walks."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from gust.adapters.store.records import from_doc
from gust.domain.ids import new_id, now
from gust.domain.models import Chat, Message
from gust.ports.search_store import Tombstone

T = TypeVar("T")

# The partial indexes hold only pending rows: listing and counting the backlog costs what
# the backlog is, not what the store is. Queries must repeat the exact WHERE expression.
PENDING = "json_extract(data, '$.index_state') = 'pending'"

MIGRATIONS: list[tuple[str, str]] = [
    ("0100_search", f"""
    CREATE TABLE search_tombstones (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        target_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX chats_search_pending ON chats (id) WHERE {PENDING};
    CREATE INDEX messages_search_pending ON messages (id) WHERE {PENDING};
    """),
]

_CHUNK = 500  # ids per IN (...) list


def record_chat_tombstone(conn: sqlite3.Connection, user_id: str, chat_id: str) -> None:
    """Called inside delete_chat's transaction: the deletion and its tombstone commit together."""
    conn.execute(
        "INSERT INTO search_tombstones (id, kind, target_id, user_id, created_at) VALUES (?, ?, ?, ?, ?)",
        (new_id(), "chat", chat_id, user_id, now()),
    )


def _chunks(ids: Collection[str]) -> list[list[str]]:
    items = list(ids)
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SQLiteSearchMixin:
    """Mixed into SQLiteStore (uses its `_read`/`_write` worker-thread helpers)."""

    if TYPE_CHECKING:

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def list_pending_chats(self, *, limit: int) -> list[Chat]:
        sql = f"SELECT data FROM chats WHERE {PENDING} ORDER BY id LIMIT ?"  # noqa: S608 - constant
        rows = await self._read(lambda conn: conn.execute(sql, (limit,)).fetchall())
        return [from_doc(Chat, json.loads(r[0])) for r in rows]

    async def list_pending_messages(self, *, limit: int) -> list[Message]:
        sql = (
            f"SELECT data FROM messages WHERE {PENDING} AND status != 'streaming' "  # noqa: S608
            "ORDER BY id LIMIT ?"
        )
        rows = await self._read(lambda conn: conn.execute(sql, (limit,)).fetchall())
        return [from_doc(Message, json.loads(r[0])) for r in rows]

    async def count_search_pending(self) -> int:
        sql = (
            f"SELECT (SELECT count(*) FROM chats WHERE {PENDING}) + "  # noqa: S608 - constant
            f"(SELECT count(*) FROM messages WHERE {PENDING} AND status != 'streaming')"
        )
        row = await self._read(lambda conn: conn.execute(sql).fetchone())
        return int(row[0])

    async def mark_chats_indexed(self, chats: Sequence[Chat]) -> int:
        # updated_at is compared on its REAL column (bound from the same float), never
        # through JSON text, so equal versions compare equal.
        params = [(c.id, c.title, c.updated_at) for c in chats]
        return await self._write(
            lambda conn: _changes(
                conn,
                "UPDATE chats SET data = json_set(data, '$.index_state', 'indexed') "
                "WHERE id = ? AND json_extract(data, '$.title') = ? AND updated_at = ?",
                params,
            )
        )

    async def mark_messages_indexed(self, messages: Sequence[Message]) -> int:
        params = [(m.id, m.status, m.content) for m in messages]
        return await self._write(
            lambda conn: _changes(
                conn,
                "UPDATE messages SET data = json_set(data, '$.index_state', 'indexed') "
                "WHERE id = ? AND status = ? AND json_extract(data, '$.content') = ?",
                params,
            )
        )

    async def list_search_tombstones(self, *, limit: int) -> list[Tombstone]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT id, kind, target_id, user_id, created_at FROM search_tombstones ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [Tombstone(id=r[0], kind=r[1], target_id=r[2], user_id=r[3], created_at=r[4]) for r in rows]

    async def add_search_tombstone(self, tombstone: Tombstone) -> None:
        t = tombstone
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO search_tombstones (id, kind, target_id, user_id, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (t.id, t.kind, t.target_id, t.user_id, t.created_at),
            )
        )

    async def clear_search_tombstones(self, ids: Sequence[str]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for chunk in _chunks(ids):
                conn.execute(f"DELETE FROM search_tombstones WHERE id IN ({_marks(len(chunk))})", chunk)  # noqa: S608

        if ids:
            await self._write(op)

    async def walk_chats(self, *, after: str | None, limit: int) -> list[Chat]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM chats WHERE id > ? ORDER BY id LIMIT ?", (after or "", limit)
            ).fetchall()
        )
        return [from_doc(Chat, json.loads(r[0])) for r in rows]

    async def walk_messages(self, *, after: str | None, limit: int) -> list[Message]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM messages WHERE id > ? ORDER BY id LIMIT ?", (after or "", limit)
            ).fetchall()
        )
        return [from_doc(Message, json.loads(r[0])) for r in rows]

    async def existing_chat_ids(self, ids: Collection[str]) -> set[str]:
        return await self._existing("chats", ids)

    async def existing_message_ids(self, ids: Collection[str]) -> set[str]:
        return await self._existing("messages", ids)

    async def _existing(self, table: str, ids: Collection[str]) -> set[str]:
        def op(conn: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for chunk in _chunks(ids):
                sql = f"SELECT id FROM {table} WHERE id IN ({_marks(len(chunk))})"  # noqa: S608 - internal
                found.update(r[0] for r in conn.execute(sql, chunk))
            return found

        return await self._read(op) if ids else set()

    async def chat_titles(self, user_id: str, chat_ids: Collection[str]) -> dict[str, str]:
        def op(conn: sqlite3.Connection) -> dict[str, str]:
            titles: dict[str, str] = {}
            for chunk in _chunks(chat_ids):
                sql = (
                    "SELECT id, json_extract(data, '$.title') FROM chats "  # noqa: S608 - placeholders only
                    f"WHERE user_id = ? AND id IN ({_marks(len(chunk))})"
                )
                titles.update((r[0], r[1]) for r in conn.execute(sql, [user_id, *chunk]))
            return titles

        return await self._read(op) if chat_ids else {}


def _changes(conn: sqlite3.Connection, sql: str, params: list[tuple[Any, ...]]) -> int:
    before = conn.total_changes
    conn.executemany(sql, params)
    return conn.total_changes - before
