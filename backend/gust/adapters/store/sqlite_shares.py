"""Share snapshots in the SQLite store: one row per live link, unique per chat."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from gust.ports.shares_store import Share

T = TypeVar("T")

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0700_shares",
        """
    CREATE TABLE shares (
        id TEXT PRIMARY KEY,
        chat_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE UNIQUE INDEX shares_user_chat ON shares (user_id, chat_id);
    """,
    ),
]


def _share(data: str) -> Share:
    doc: dict[str, Any] = json.loads(data)
    return Share(**doc)


def _data(share: Share) -> str:
    return json.dumps(
        {
            "id": share.id,
            "chat_id": share.chat_id,
            "user_id": share.user_id,
            "team_id": share.team_id,
            "title": share.title,
            "model": share.model,
            "created_at": share.created_at,
            "messages": share.messages,
        },
        ensure_ascii=False,
    )


class SQLiteSharesMixin:
    """Mixed into SQLiteStore (uses its `_read` / `_write` worker-thread helpers)."""

    if TYPE_CHECKING:

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def put_share(self, share: Share) -> Share | None:
        def put(conn: sqlite3.Connection) -> Share | None:
            row = conn.execute(
                "SELECT data FROM shares WHERE user_id = ? AND chat_id = ?", (share.user_id, share.chat_id)
            ).fetchone()
            conn.execute(
                "DELETE FROM shares WHERE user_id = ? AND chat_id = ?", (share.user_id, share.chat_id)
            )
            conn.execute(
                "INSERT INTO shares (id, chat_id, user_id, data) VALUES (?, ?, ?, ?)",
                (share.id, share.chat_id, share.user_id, _data(share)),
            )
            return _share(row[0]) if row else None

        return await self._write(put)

    async def get_share(self, share_id: str) -> Share | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT data FROM shares WHERE id = ?", (share_id,)).fetchone()
        )
        return _share(row[0]) if row else None

    async def get_chat_share(self, user_id: str, chat_id: str) -> Share | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM shares WHERE user_id = ? AND chat_id = ?", (user_id, chat_id)
            ).fetchone()
        )
        return _share(row[0]) if row else None

    async def delete_chat_share(self, user_id: str, chat_id: str) -> bool:
        def delete(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute("DELETE FROM shares WHERE user_id = ? AND chat_id = ?", (user_id, chat_id))
            return cursor.rowcount > 0

        return await self._write(delete)
