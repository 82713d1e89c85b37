"""Embedded retrieval: SQLite FTS5 (BM25) and sqlite-vec (cosine) in one file, fused by RRF.

Python's own sqlite3 module cannot load extensions when the interpreter was built without
it (pyenv's and python.org's builds on Linux, macOS's system Python), so this adapter
talks to SQLite through apsw, whose wheel bundles a current SQLite with FTS5 and always
allows loading sqlite-vec: the same engine on every machine.

The nearest vectors are an exact scan of the passages in the asker's scope (sqlite-vec's
`vec_distance_cosine` over the rows the scope selects), not an approximate index: the
scope is applied before ranking, so a neighbour the asker may not read can never push out
one they may. bench/RESULTS.md has its latency at 100,000 passages.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import apsw
import numpy as np
import sqlite_vec

from gust.domain.retrieval import Passage, RetrievalHit, RetrievalScope
from gust.ports.retrieval import RetrievalError, candidates, fuse, query_terms

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS passages (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    file_id TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    team_id TEXT,
    page INTEGER,
    section TEXT,
    text TEXT NOT NULL,
    dims INTEGER,          -- length of `vector`; vectors of another model are never compared
    vector BLOB            -- float32, unit length (sqlite-vec's format)
);
CREATE INDEX IF NOT EXISTS passages_file ON passages(file_id);
CREATE INDEX IF NOT EXISTS passages_owner ON passages(owner_id);
CREATE INDEX IF NOT EXISTS passages_team ON passages(team_id) WHERE team_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS passage_collections (
    collection_id TEXT NOT NULL,
    passage_rowid INTEGER NOT NULL,
    PRIMARY KEY (collection_id, passage_rowid)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS passage_collections_rowid ON passage_collections(passage_rowid);
CREATE VIRTUAL TABLE IF NOT EXISTS passages_fts USING fts5(
    text, section, content='passages', content_rowid='rowid', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS passages_fts_insert AFTER INSERT ON passages BEGIN
    INSERT INTO passages_fts(rowid, text, section) VALUES (new.rowid, new.text, new.section);
END;
CREATE TRIGGER IF NOT EXISTS passages_fts_delete AFTER DELETE ON passages BEGIN
    INSERT INTO passages_fts(passages_fts, rowid, text, section)
        VALUES ('delete', old.rowid, old.text, old.section);
    DELETE FROM passage_collections WHERE passage_rowid = old.rowid;
END;
"""


def _vector_blob(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def _placeholders(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


# The SQL below is put together from constant text and "?" placeholders only (S608).
def _visible(scope: RetrievalScope) -> tuple[str, list[object]]:
    """SQL selecting the rowids of the passages `scope` may read, and its parameters."""
    parts = ["SELECT rowid FROM passages WHERE owner_id = ?"]
    params: list[object] = [scope.user_id]
    teams = sorted(scope.team_ids)
    if teams:
        parts.append(f"SELECT rowid FROM passages WHERE team_id IN ({_placeholders(teams)})")  # noqa: S608
        params.extend(teams)
    collections = sorted(scope.collection_ids)
    if collections:
        marks = _placeholders(collections)
        parts.append(f"SELECT passage_rowid FROM passage_collections WHERE collection_id IN ({marks})")  # noqa: S608
        params.extend(collections)
    sql = " UNION ".join(parts)
    if scope.file_ids is not None:
        files = sorted(scope.file_ids)
        sql = f"SELECT rowid FROM passages WHERE file_id IN ({_placeholders(files)}) AND rowid IN ({sql})"  # noqa: S608
        params = [*files, *params]
    return sql, params


class SQLiteRetrieval:
    """Retrieval in a SQLite file: one writer thread, reader threads, a connection each."""

    name = "sqlite"

    def __init__(
        self, path: Path, *, readers: int = 2, busy_timeout: float = 10.0, min_similarity: float = 0.0
    ) -> None:
        self.path = path
        self.readers = readers
        self.busy_timeout = busy_timeout
        self.min_similarity = min_similarity
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[apsw.Connection] = []
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="retrieval-w")
            self._reader = ThreadPoolExecutor(self.readers, thread_name_prefix="retrieval-r")
        await self._write(lambda conn: conn.execute(SCHEMA))

    async def close(self) -> None:
        pools, self._writer, self._reader = (self._writer, self._reader), None, None
        for pool in pools:
            if pool is not None:
                await asyncio.to_thread(pool.shutdown, wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").get)

    def _connect(self) -> apsw.Connection:
        conn = apsw.Connection(str(self.path))
        conn.set_busy_timeout(int(self.busy_timeout * 1000))
        conn.enable_load_extension(True)
        conn.load_extension(sqlite_vec.loadable_path())
        conn.enable_load_extension(False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        with self._lock:
            self._connections.append(conn)
        return conn

    def _conn(self) -> apsw.Connection:
        conn: apsw.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    async def _run(
        self, pool: ThreadPoolExecutor | None, fn: Callable[[apsw.Connection], T], write: bool
    ) -> T:
        if pool is None:
            raise RuntimeError(f"SQLiteRetrieval ({self.path}) used before start()")

        def call() -> T:
            conn = self._conn()
            try:
                if not write:
                    return fn(conn)
                with conn:  # one transaction: all of it or nothing
                    result = fn(conn)
                return result
            except apsw.Error as exc:
                raise RetrievalError(f"retrieval index {self.path}: {type(exc).__name__}: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(pool, call)

    async def _write(self, fn: Callable[[apsw.Connection], T]) -> T:
        return await self._run(self._writer, fn, True)

    async def _read(self, fn: Callable[[apsw.Connection], T]) -> T:
        return await self._run(self._reader, fn, False)

    # -- writes --------------------------------------------------------------------
    async def index(self, passages: Sequence[Passage]) -> None:
        if not passages:
            return
        rows = list(passages)

        def write(conn: apsw.Connection) -> None:
            for p in rows:
                conn.execute("DELETE FROM passages WHERE id = ?", (p.id,))
                vector = None if p.vector is None else _vector_blob(p.vector)
                conn.execute(
                    "INSERT INTO passages (id, file_id, owner_id, team_id, page, section, text, dims, vector)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (p.id, p.file_id, p.owner_id, p.team_id, p.page, p.section, p.text,
                     None if p.vector is None else len(p.vector), vector),
                )
                rowid = conn.last_insert_rowid()
                conn.executemany(
                    "INSERT OR IGNORE INTO passage_collections (collection_id, passage_rowid) VALUES (?, ?)",
                    [(collection_id, rowid) for collection_id in p.collection_ids],
                )

        await self._write(write)

    async def delete_file(self, file_id: str) -> None:
        await self._write(lambda conn: conn.execute("DELETE FROM passages WHERE file_id = ?", (file_id,)))

    async def set_file_access(
        self, file_id: str, *, team_id: str | None, collection_ids: Sequence[str]
    ) -> None:
        collections = list(dict.fromkeys(collection_ids))

        def write(conn: apsw.Connection) -> None:
            conn.execute("UPDATE passages SET team_id = ? WHERE file_id = ?", (team_id, file_id))
            found = conn.execute("SELECT rowid FROM passages WHERE file_id = ?", (file_id,))
            rowids = [row[0] for row in found]
            unlink = "DELETE FROM passage_collections WHERE passage_rowid = ?"
            conn.executemany(unlink, [(rowid,) for rowid in rowids])
            conn.executemany(
                "INSERT INTO passage_collections (collection_id, passage_rowid) VALUES (?, ?)",
                [(collection_id, rowid) for rowid in rowids for collection_id in collections],
            )

        await self._write(write)

    async def reset(self) -> None:
        await self._write(lambda conn: conn.execute("DELETE FROM passages"))

    async def count(self, file_id: str | None = None) -> int:
        def read(conn: apsw.Connection) -> int:
            if file_id is None:
                row = conn.execute("SELECT count(*) FROM passages").get
            else:
                row = conn.execute("SELECT count(*) FROM passages WHERE file_id = ?", (file_id,)).get
            return int(row)

        return await self._read(read)

    # -- search --------------------------------------------------------------------
    async def search(
        self, query_text: str, query_vector: Sequence[float] | None, scope: RetrievalScope, limit: int
    ) -> list[RetrievalHit]:
        if limit <= 0:
            return []
        terms = query_terms(query_text)
        match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
        vector = None if query_vector is None else _vector_blob(query_vector)
        dims = None if query_vector is None else len(query_vector)
        wanted = candidates(limit)
        visible, params = _visible(scope)
        max_distance = 1.0 - self.min_similarity

        def read(conn: apsw.Connection) -> list[RetrievalHit]:
            keyword: list[str] = []
            if match:
                # Matches first, materialized: given `rowid IN (...)` next to MATCH, SQLite
                # hands FTS5 one rowid at a time and runs the full-text query once per
                # readable passage (2 s instead of 30 ms at 2,000 passages).
                keyword = [row[0] for row in conn.execute(
                    "WITH matches AS MATERIALIZED (SELECT rowid, bm25(passages_fts) AS score"  # noqa: S608
                    " FROM passages_fts WHERE passages_fts MATCH ?)"
                    " SELECT p.id FROM matches JOIN passages AS p ON p.rowid = matches.rowid"
                    f" WHERE matches.rowid IN ({visible}) ORDER BY matches.score, p.id LIMIT ?",
                    (match, *params, wanted),
                )]
            nearest: list[str] = []
            if vector is not None:
                nearest = [row[0] for row in conn.execute(
                    "SELECT id FROM (SELECT p.id, vec_distance_cosine(p.vector, ?) AS distance"  # noqa: S608
                    f" FROM passages AS p WHERE p.dims = ? AND p.rowid IN ({visible})) WHERE distance < ?"
                    " ORDER BY distance, id LIMIT ?",
                    (vector, dims, *params, max_distance, wanted),
                )]
            fused = fuse(keyword, nearest, limit)
            if not fused:
                return []
            ids = [item.id for item in fused]
            sql = f"SELECT id, file_id, text, page, section FROM passages WHERE id IN ({_placeholders(ids)})"  # noqa: S608
            rows: dict[str, Any] = {row[0]: row for row in conn.execute(sql, ids)}
            return [
                RetrievalHit(
                    passage_id=item.id,
                    file_id=rows[item.id][1],
                    text=rows[item.id][2],
                    page=rows[item.id][3],
                    section=rows[item.id][4],
                    score=item.score,
                    keyword_rank=item.keyword_rank,
                    vector_rank=item.vector_rank,
                )
                for item in fused
                if item.id in rows
            ]

        return await self._read(read)
