"""File records and their chunks in the SQLite store (tables `file_records`, `file_chunks`)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from gust.domain.errors import Conflict
from gust.domain.files import Chunk, FileRecord, FileStatus

T = TypeVar("T")

MIGRATIONS: list[tuple[str, str]] = [
    (
        "0900_files",
        """
    CREATE TABLE file_records (
        id TEXT PRIMARY KEY,
        owner_id TEXT NOT NULL,
        status TEXT NOT NULL,
        created_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX file_records_owner_created ON file_records (owner_id, created_at DESC, id DESC);
    CREATE INDEX file_records_status ON file_records (status, created_at);
    CREATE TABLE file_chunks (
        id TEXT PRIMARY KEY,
        file_id TEXT NOT NULL,
        ordinal INTEGER NOT NULL,
        data TEXT NOT NULL
    );
    CREATE UNIQUE INDEX file_chunks_file_ordinal ON file_chunks (file_id, ordinal);
    """,
    ),
]


def _dumps(value: Any) -> str:
    return json.dumps(dataclasses.asdict(value), ensure_ascii=False, separators=(",", ":"))


def _record(data: str) -> FileRecord:
    return FileRecord(**json.loads(data))


def _chunk(data: str) -> Chunk:
    return Chunk(**json.loads(data))


class SQLiteFilesMixin:
    """Mixed into SQLiteStore (uses its `_read` / `_write` worker-thread helpers)."""

    if TYPE_CHECKING:

        async def _read(self, fn: Callable[[sqlite3.Connection], T], *, point: bool = False) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T], *, point: bool = False) -> T: ...

    async def create_file(self, record: FileRecord) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO file_records (id, owner_id, status, created_at, data) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (record.id, record.owner_id, record.status, record.created_at, _dumps(record)),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict("a file with this id exists", code="file_exists") from exc

        await self._write(op)

    async def get_file(self, file_id: str) -> FileRecord | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT data FROM file_records WHERE id = ?", (file_id,)).fetchone(),
            point=True,
        )
        return _record(row[0]) if row else None

    async def list_files(
        self, owner_id: str, *, limit: int, before: tuple[float, str] | None = None
    ) -> list[FileRecord]:
        if before is None:
            sql = "SELECT data FROM file_records WHERE owner_id = ? ORDER BY created_at DESC, id DESC LIMIT ?"
            args: tuple[Any, ...] = (owner_id, limit)
        else:
            sql = ("SELECT data FROM file_records WHERE owner_id = ? AND (created_at < ? OR "
                   "(created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?")
            args = (owner_id, before[0], before[0], before[1], limit)
        rows = await self._read(lambda conn: conn.execute(sql, args).fetchall())
        return [_record(row[0]) for row in rows]

    async def files_with_status(self, status: FileStatus, *, limit: int) -> list[FileRecord]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM file_records WHERE status = ? ORDER BY created_at, id LIMIT ?",
                (status, limit),
            ).fetchall()
        )
        return [_record(row[0]) for row in rows]

    async def finish_file(
        self,
        file_id: str,
        status: FileStatus,
        *,
        chunks: Sequence[Chunk] = (),
        pages: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> FileRecord | None:
        def op(conn: sqlite3.Connection) -> FileRecord | None:
            row = conn.execute("SELECT data FROM file_records WHERE id = ?", (file_id,)).fetchone()
            if not row:
                return None
            record = dataclasses.replace(
                _record(row[0]), status=status, pages=pages, chunks=len(chunks),
                error_code=error_code, error_message=error_message,
            )
            conn.execute("DELETE FROM file_chunks WHERE file_id = ?", (file_id,))
            conn.executemany(
                "INSERT INTO file_chunks (id, file_id, ordinal, data) VALUES (?, ?, ?, ?)",
                [(chunk.id, file_id, chunk.ordinal, _dumps(chunk)) for chunk in chunks],
            )
            conn.execute(
                "UPDATE file_records SET status = ?, data = ? WHERE id = ?", (status, _dumps(record), file_id)
            )
            return record

        return await self._write(op)

    async def list_chunks(self, file_id: str, *, after: int = -1, limit: int = 1000) -> list[Chunk]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM file_chunks WHERE file_id = ? AND ordinal > ? ORDER BY ordinal LIMIT ?",
                (file_id, after, limit),
            ).fetchall()
        )
        return [_chunk(row[0]) for row in rows]

    async def delete_file(self, file_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM file_chunks WHERE file_id = ?", (file_id,))
            return conn.execute("DELETE FROM file_records WHERE id = ?", (file_id,)).rowcount > 0

        return await self._write(op)
