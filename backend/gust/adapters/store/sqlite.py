"""SQLite store: the embedded default. One WAL file in DATA_DIR, queries on worker threads.

Point operations (one row by its key) run on the event loop while the writer thread is idle:
see adapters/sqlite_threads.py.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from gust.adapters.sqlite_threads import SQLiteThreads
from gust.adapters.store.guard import StoreCalls, guarded
from gust.adapters.store.records import check_changes, from_doc, mark_pending, to_doc
from gust.adapters.store.sqlite_accounts import SQLiteAccountsMixin
from gust.adapters.store.sqlite_extras import SQLiteExtrasMixin
from gust.adapters.store.sqlite_files import SQLiteFilesMixin
from gust.adapters.store.sqlite_migrations import migrate
from gust.adapters.store.sqlite_search import SQLiteSearchMixin, record_chat_tombstone
from gust.adapters.store.sqlite_shares import SQLiteSharesMixin
from gust.adapters.store.sqlite_usage import SQLiteUsageMixin
from gust.domain.errors import Conflict
from gust.domain.models import Chat, Message, Team, User
from gust.ports.store import ChatCursor

log = logging.getLogger(__name__)
T = TypeVar("T")

def _dumps(record: Any) -> str:
    return json.dumps(to_doc(record), ensure_ascii=False, separators=(",", ":"))


# Errors that mean "not now" rather than "wrong": another process holds the lock past the
# busy timeout, or the disk failed. Answered 503 + Retry-After (adapters/store/guard.py).
UNAVAILABLE_ERRORS = ("locked", "busy", "disk i/o error", "unable to open database", "disk is full")


@guarded(shield=False)
class SQLiteStore(
    SQLiteSearchMixin, SQLiteAccountsMixin, SQLiteUsageMixin, SQLiteSharesMixin, SQLiteExtrasMixin,
    SQLiteFilesMixin,
):
    """Store on one SQLite file. Writes go through one thread (SQLite has one writer);
    reads run on a small pool of threads, each with its own connection (WAL readers
    never wait for the writer)."""

    name = "sqlite"

    def __init__(self, path: str | Path, *, readers: int = 2, busy_timeout: float = 10.0) -> None:
        self.path = str(path)
        self._db = SQLiteThreads(
            self.path, name="gust-sqlite", readers=readers, foreign_keys=True, busy_timeout=busy_timeout
        )
        self.calls = StoreCalls(self.name)

    def unavailable(self, exc: BaseException) -> str | None:
        """Why `exc` means the database cannot be used now (None: any other error)."""
        text = str(exc).lower()
        if isinstance(exc, sqlite3.OperationalError) and any(e in text for e in UNAVAILABLE_ERRORS):
            return str(exc)
        if isinstance(exc, RuntimeError) and ("is closed" in text or "before start()" in text):
            return "the store is closed (shutting down)"
        return None

    # -- plumbing ------------------------------------------------------------------
    # point=True: one row by its key, run on the event loop when the writer is idle
    # (adapters/sqlite_threads.py); nothing that scans, or that can grow with a chat.
    async def _read(self, fn: Callable[[sqlite3.Connection], T], *, point: bool = False) -> T:
        return await self._db.read(fn, point=point)

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, point: bool = False) -> T:
        return await self._db.write(fn, point=point)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db.start()
        await self._db.run_writer(self._migrate)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        migrate(conn, str(self.path))

    async def close(self) -> None:
        self._db.close()

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchone())

    # -- locks ---------------------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            now = time.time()
            row = conn.execute("SELECT owner, expires_at FROM locks WHERE name = ?", (name,)).fetchone()
            if row and row[0] != owner and row[1] > now:
                return False
            conn.execute(
                "INSERT INTO locks (name, owner, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
                (name, owner, now + ttl),
            )
            return True

        return await self._write(op)

    async def release_lock(self, name: str, owner: str) -> None:
        await self._write(
            lambda conn: conn.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, owner))
        )

    # -- teams and users -----------------------------------------------------------
    async def create_team(self, team: Team) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute("INSERT INTO teams (id, data) VALUES (?, ?)", (team.id, _dumps(team)))
            except sqlite3.IntegrityError as exc:
                raise Conflict("team exists", code="team_exists") from exc

        await self._write(op)

    async def get_team(self, team_id: str) -> Team | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT data FROM teams WHERE id = ?", (team_id,)).fetchone()
        )
        return from_doc(Team, json.loads(row[0])) if row else None

    async def update_team(self, team_id: str, changes: Mapping[str, Any]) -> Team | None:
        updates = check_changes(Team, changes)

        def op(conn: sqlite3.Connection) -> Team | None:
            row = conn.execute("SELECT data FROM teams WHERE id = ?", (team_id,)).fetchone()
            if not row:
                return None
            team = from_doc(Team, {**json.loads(row[0]), **updates})
            conn.execute("UPDATE teams SET data = ? WHERE id = ?", (_dumps(team), team_id))
            return team

        return await self._write(op)

    async def create_user(self, user: User) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO users (id, email, team_id, data) VALUES (?, ?, ?, ?)",
                    (user.id, user.email, user.team_id, _dumps(user)),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict("an account with this email already exists", code="email_taken") from exc

        await self._write(op)

    async def _one_user(self, column: str, value: str) -> User | None:
        sql = f"SELECT data FROM users WHERE {column} = ?"  # noqa: S608 - column is internal
        row = await self._read(lambda conn: conn.execute(sql, (value,)).fetchone(), point=True)
        return from_doc(User, json.loads(row[0])) if row else None

    async def get_user(self, user_id: str) -> User | None:
        return await self._one_user("id", user_id)

    async def get_user_by_email(self, email: str) -> User | None:
        return await self._one_user("email", email)

    async def count_users(self) -> int:
        row = await self._read(lambda conn: conn.execute("SELECT COUNT(*) FROM users").fetchone())
        return int(row[0])

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> User | None:
        updates = check_changes(User, changes)

        def op(conn: sqlite3.Connection) -> User | None:
            row = conn.execute("SELECT data FROM users WHERE id = ?", (user_id,)).fetchone()
            if not row:
                return None
            user = from_doc(User, {**json.loads(row[0]), **updates})
            try:
                conn.execute(
                    "UPDATE users SET email = ?, team_id = ?, data = ? WHERE id = ?",
                    (user.email, user.team_id, _dumps(user), user_id),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict("an account with this email already exists", code="email_taken") from exc
            return user

        return await self._write(op)

    # -- chats ---------------------------------------------------------------------
    @staticmethod
    def _chat_row(chat: Chat) -> tuple[Any, ...]:
        return (chat.id, chat.user_id, chat.updated_at, int(chat.archived), _dumps(chat))

    async def create_chat(self, chat: Chat) -> None:
        row = self._chat_row(chat)
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO chats (id, user_id, updated_at, archived, data) VALUES (?, ?, ?, ?, ?)", row
            ),
            point=True,
        )

    async def get_chat(self, user_id: str, chat_id: str) -> Chat | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM chats WHERE id = ? AND user_id = ?", (chat_id, user_id)
            ).fetchone(),
            point=True,
        )
        return from_doc(Chat, json.loads(row[0])) if row else None

    async def list_chats(
        self,
        user_id: str,
        *,
        limit: int,
        after: ChatCursor | None = None,
        archived: bool | None = None,
        tag: str | None = None,
    ) -> list[Chat]:
        sql = "SELECT data FROM chats WHERE user_id = ?"
        params: list[Any] = [user_id]
        if archived is not None:
            sql += " AND archived = ?"
            params.append(int(archived))
        if tag is not None:
            sql += " AND id IN (SELECT chat_id FROM chat_tags WHERE user_id = ? AND tag = ?)"
            params += [user_id, tag]
        if after is not None:
            sql += " AND (updated_at < ? OR (updated_at = ? AND id < ?))"
            params += [after[0], after[0], after[1]]
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ?"
        params.append(limit)
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [from_doc(Chat, json.loads(r[0])) for r in rows]

    async def update_chat(self, user_id: str, chat_id: str, changes: Mapping[str, Any]) -> Chat | None:
        updates = mark_pending(check_changes(Chat, changes))

        def op(conn: sqlite3.Connection) -> Chat | None:
            row = conn.execute(
                "SELECT data FROM chats WHERE id = ? AND user_id = ?", (chat_id, user_id)
            ).fetchone()
            if not row:
                return None
            chat = from_doc(Chat, {**json.loads(row[0]), **updates})
            conn.execute(
                "UPDATE chats SET updated_at = ?, archived = ?, data = ? WHERE id = ?",
                (chat.updated_at, int(chat.archived), _dumps(chat), chat_id),
            )
            return chat

        return await self._write(op, point=True)

    async def delete_chat(self, user_id: str, chat_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM chats WHERE id = ? AND user_id = ?", (chat_id, user_id))
            if cur.rowcount == 0:
                return False
            conn.execute("DELETE FROM messages WHERE chat_id = ? AND user_id = ?", (chat_id, user_id))
            record_chat_tombstone(conn, user_id, chat_id)
            return True

        return await self._write(op)

    # -- messages ------------------------------------------------------------------
    async def create_message(self, message: Message) -> None:
        m = message
        row = (m.id, m.chat_id, m.user_id, m.created_at, m.status, _dumps(m))
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO messages (id, chat_id, user_id, created_at, status, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            ),
            point=True,
        )

    async def get_message(self, user_id: str, message_id: str) -> Message | None:
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM messages WHERE id = ? AND user_id = ?", (message_id, user_id)
            ).fetchone(),
            point=True,
        )
        return from_doc(Message, json.loads(row[0])) if row else None

    async def list_messages(self, user_id: str, chat_id: str) -> list[Message]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM messages WHERE chat_id = ? AND user_id = ? ORDER BY created_at, id",
                (chat_id, user_id),
            ).fetchall()
        )
        return [from_doc(Message, json.loads(r[0])) for r in rows]

    async def update_message(
        self,
        user_id: str,
        message_id: str,
        changes: Mapping[str, Any],
        *,
        if_status: str | None = None,
    ) -> bool:
        updates = mark_pending(check_changes(Message, changes))
        # json_set in SQLite, not read-decode-merge-encode in Python: a streaming answer is
        # checkpointed every second, and its document grows with every token.
        paths = ", ".join("?, json(?)" for _ in updates)
        params: list[Any] = []
        for key, value in updates.items():
            params += [f"$.{key}", json.dumps(value, ensure_ascii=False, separators=(",", ":"))]
        status = ", status = ?" if "status" in updates else ""
        if status:
            params.append(updates["status"])
        where = "id = ? AND user_id = ?"
        params += [message_id, user_id]
        if if_status is not None:
            where += " AND status = ?"
            params.append(if_status)
        sql = f"UPDATE messages SET data = json_set(data, {paths}){status} WHERE {where}"  # noqa: S608 - placeholders only
        changed = await self._write(lambda conn: conn.execute(sql, params).rowcount, point=True)
        return changed > 0

    async def list_messages_by_status(self, status: str, *, limit: int) -> list[Message]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM messages WHERE status = ? ORDER BY created_at LIMIT ?", (status, limit)
            ).fetchall()
        )
        return [from_doc(Message, json.loads(r[0])) for r in rows]
