"""Search on SQLite FTS5: the embedded default, in its own file (DATA_DIR/search.db).

Each user's documents get rowids in a range of their own (user ordinal << 32 | sequence), so
a query reads only the caller's slice of every doclist: a common word costs what it costs
in one user's chats, not in everyone's.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from gust.adapters.search.query import FtsQuery, build_fts_query, typo_variants
from gust.ports.search import (
    MARK_END,
    MARK_START,
    DocRef,
    IndexDocument,
    OrphanFinder,
    SearchHit,
    SearchIndexError,
    SearchPage,
    snippet_html,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

SEQ_BITS = 32
SEQ_MASK = (1 << SEQ_BITS) - 1
TITLE_WEIGHT = 10.0
CONTENT_WEIGHT = 1.0
SNIPPET_TOKENS = 24
_CHUNK = 500

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS search_users (
        user_id TEXT PRIMARY KEY,
        ordinal INTEGER NOT NULL UNIQUE,
        next_seq INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS search_docs (
        rowid INTEGER PRIMARY KEY,
        doc_id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        user_id TEXT NOT NULL,
        team_id TEXT NOT NULL,
        chat_id TEXT NOT NULL,
        message_id TEXT,
        role TEXT,
        created_at REAL NOT NULL,
        fingerprint TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS search_docs_chat ON search_docs (chat_id)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5(
        title, content, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
    )""",
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_vocab USING fts5vocab(search_fts, 'row')",
    "INSERT INTO search_fts (search_fts, rank) "  # noqa: S608 - constants
    f"VALUES ('rank', 'bm25({TITLE_WEIGHT}, {CONTENT_WEIGHT})')",
]
SCHEMA_VERSION = 1


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SQLiteSearchIndex:
    """SearchIndex on one SQLite file: one writer thread, a few reader threads (WAL)."""

    name = "sqlite-fts5"

    def __init__(self, path: str | Path, *, busy_timeout: float = 5.0, readers: int = 2) -> None:
        self.path = str(path)
        self.busy_timeout = busy_timeout
        self._readers = readers
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._conn_lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
            with self._conn_lock:
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    async def _run(self, pool: ThreadPoolExecutor | None, fn: Callable[[sqlite3.Connection], T]) -> T:
        if pool is None:
            raise RuntimeError("SQLiteSearchIndex used before start()")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(pool, lambda: fn(self._conn()))
        except sqlite3.Error as exc:
            raise SearchIndexError(f"sqlite search index: {exc}") from exc

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run(self._reader, fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def in_transaction(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(self._writer, in_transaction)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        if self._writer is None:  # start() is retried after a failure: keep the pools
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="gust-search-w")
            self._reader = ThreadPoolExecutor(self._readers, thread_name_prefix="gust-search-r")
        await self._write(self._migrate)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError("the search index was written by a newer Gust; upgrade or delete it")
        if version < SCHEMA_VERSION:
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    async def close(self) -> None:
        for pool in (self._writer, self._reader):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer = self._reader = None
        with self._conn_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1 FROM search_docs LIMIT 1").fetchall())

    # -- writes --------------------------------------------------------------------
    async def upsert(self, documents: Sequence[IndexDocument]) -> None:
        if documents:
            await self._write(lambda conn: _upsert(conn, documents))

    async def delete(self, doc_ids: Sequence[str]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for chunk in _chunks(list(doc_ids)):
                sql = f"SELECT rowid FROM search_docs WHERE doc_id IN ({_marks(len(chunk))})"  # noqa: S608
                _delete_rowids(conn, [r[0] for r in conn.execute(sql, chunk)])

        if doc_ids:
            await self._write(op)

    async def delete_chat_documents(self, user_id: str, chat_ids: Sequence[str]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for chunk in _chunks(list(chat_ids)):
                sql = (
                    "SELECT rowid FROM search_docs "  # noqa: S608 - placeholders only
                    f"WHERE user_id = ? AND chat_id IN ({_marks(len(chunk))})"
                )
                _delete_rowids(conn, [r[0] for r in conn.execute(sql, [user_id, *chunk])])

        if chat_ids:
            await self._write(op)

    # -- reconcile -----------------------------------------------------------------
    async def fingerprints(self, doc_ids: Sequence[str]) -> dict[str, str]:
        def op(conn: sqlite3.Connection) -> dict[str, str]:
            found: dict[str, str] = {}
            for chunk in _chunks(list(doc_ids)):
                sql = f"SELECT doc_id, fingerprint FROM search_docs WHERE doc_id IN ({_marks(len(chunk))})"  # noqa: S608
                found.update((r[0], r[1]) for r in conn.execute(sql, chunk))
            return found

        return await self._read(op) if doc_ids else {}

    async def prune(self, find_orphans: OrphanFinder, *, batch_size: int) -> int:
        after = ""
        removed = 0
        while True:
            rows = await self._read(partial(_page, after=after, limit=batch_size))
            if not rows:
                return removed
            refs = [DocRef(id=r[0], kind=r[1], user_id=r[2], chat_id=r[3], message_id=r[4]) for r in rows]
            orphans = await find_orphans(refs)
            if orphans:
                await self.delete(list(orphans))
                removed += len(orphans)
            after = rows[-1][0]

    async def count(self, user_id: str | None = None) -> int:
        def op(conn: sqlite3.Connection) -> int:
            if user_id is None:
                return int(conn.execute("SELECT count(*) FROM search_docs").fetchone()[0])
            bounds = _user_bounds(conn, user_id)
            if bounds is None:
                return 0
            sql = "SELECT count(*) FROM search_docs WHERE rowid BETWEEN ? AND ?"
            return int(conn.execute(sql, bounds).fetchone()[0])

        return await self._read(op)

    # -- queries -------------------------------------------------------------------
    async def search(
        self,
        user_id: str,
        query: str,
        *,
        limit: int,
        offset: int = 0,
        chat_id: str | None = None,
        role: str | None = None,
    ) -> SearchPage:
        parsed = build_fts_query(query)
        if parsed is None:
            return SearchPage(hits=[], total_estimate=0)
        return await self._read(lambda conn: _search(conn, user_id, parsed, limit, offset, chat_id, role))


# -- worker-thread functions -----------------------------------------------------------
def _user_bounds(conn: sqlite3.Connection, user_id: str) -> tuple[int, int] | None:
    row = conn.execute("SELECT ordinal FROM search_users WHERE user_id = ?", (user_id,)).fetchone()
    if row is None:
        return None
    base = int(row[0]) << SEQ_BITS
    return base, base | SEQ_MASK


def _allocate(conn: sqlite3.Connection, user_id: str, count: int) -> int:
    """Reserve `count` rowids in the user's range; return the first."""
    row = conn.execute("SELECT ordinal, next_seq FROM search_users WHERE user_id = ?", (user_id,)).fetchone()
    if row is None:
        ordinal = conn.execute("SELECT coalesce(max(ordinal), 0) + 1 FROM search_users").fetchone()[0]
        conn.execute(
            "INSERT INTO search_users (user_id, ordinal, next_seq) VALUES (?, ?, ?)", (user_id, ordinal, 1)
        )
        seq = 1
    else:
        ordinal, seq = row
    if seq + count > SEQ_MASK:
        raise SearchIndexError(f"user {user_id} has used up its range of search rowids")
    conn.execute("UPDATE search_users SET next_seq = ? WHERE user_id = ?", (seq + count, user_id))
    return (int(ordinal) << SEQ_BITS) | seq


def _page(conn: sqlite3.Connection, *, after: str, limit: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT doc_id, kind, user_id, chat_id, message_id FROM search_docs "
        "WHERE doc_id > ? ORDER BY doc_id LIMIT ?",
        (after, limit),
    ).fetchall()


def _upsert(conn: sqlite3.Connection, documents: Sequence[IndexDocument]) -> None:
    latest = {doc.id: doc for doc in documents}  # the last version of an id in a batch wins
    existing: dict[str, tuple[int, str]] = {}
    ids = list(latest)
    for chunk in _chunks(ids):
        sql = f"SELECT doc_id, rowid, fingerprint FROM search_docs WHERE doc_id IN ({_marks(len(chunk))})"  # noqa: S608
        existing.update((r[0], (r[1], r[2])) for r in conn.execute(sql, chunk))
    new_by_user: dict[str, list[IndexDocument]] = {}
    for doc in latest.values():
        found = existing.get(doc.id)
        if found is None:
            new_by_user.setdefault(doc.user_id, []).append(doc)
        elif found[1] != doc.fingerprint:
            rowid = found[0]
            conn.execute("DELETE FROM search_fts WHERE rowid = ?", (rowid,))
            conn.execute("DELETE FROM search_docs WHERE rowid = ?", (rowid,))
            _insert(conn, rowid, doc)
    for user_id, docs in new_by_user.items():
        first = _allocate(conn, user_id, len(docs))
        for i, doc in enumerate(docs):
            _insert(conn, first + i, doc)


def _insert(conn: sqlite3.Connection, rowid: int, doc: IndexDocument) -> None:
    conn.execute(
        "INSERT INTO search_docs (rowid, doc_id, kind, user_id, team_id, chat_id, message_id, role, "
        "created_at, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rowid, doc.id, doc.kind, doc.user_id, doc.team_id, doc.chat_id, doc.message_id, doc.role,
         doc.created_at, doc.fingerprint),
    )
    conn.execute(
        "INSERT INTO search_fts (rowid, title, content) VALUES (?, ?, ?)", (rowid, doc.title, doc.content)
    )


def _delete_rowids(conn: sqlite3.Connection, rowids: list[int]) -> None:
    for chunk in _chunks(rowids):
        marks = _marks(len(chunk))
        conn.execute(f"DELETE FROM search_fts WHERE rowid IN ({marks})", chunk)  # noqa: S608
        conn.execute(f"DELETE FROM search_docs WHERE rowid IN ({marks})", chunk)  # noqa: S608


def _search(
    conn: sqlite3.Connection,
    user_id: str,
    parsed: FtsQuery,
    limit: int,
    offset: int,
    chat_id: str | None,
    role: str | None,
) -> SearchPage:
    bounds = _user_bounds(conn, user_id)
    if bounds is None:
        return SearchPage(hits=[], total_estimate=0)
    match = parsed.expression
    rows = _ranked(conn, match, bounds, limit, offset, chat_id, role)
    if not rows and offset == 0 and parsed.typo_terms:
        # Nothing matched as typed: allow one typo in each long word, keeping only the
        # spellings the index actually holds (the vocabulary is one B-tree lookup each).
        fixes: dict[str, list[str]] = {}
        for term in parsed.typo_terms:
            variants = sorted(typo_variants(term))
            found = conn.execute(
                f"SELECT term FROM search_vocab WHERE term IN ({_marks(len(variants))})",  # noqa: S608
                variants,
            ).fetchall()
            fixes[term] = [r[0] for r in found]
        if any(fixes.values()):
            match = parsed.with_alternatives(fixes)
            rows = _ranked(conn, match, bounds, limit, offset, chat_id, role)
    hits = []
    for rowid, doc_id, kind, hit_chat, message_id, hit_role, created_at, _total in rows:
        snippet = conn.execute(
            "SELECT snippet(search_fts, -1, ?, ?, '…', ?) FROM search_fts "
            "WHERE search_fts MATCH ? AND rowid = ?",
            (MARK_START, MARK_END, SNIPPET_TOKENS, match, rowid),
        ).fetchone()
        hits.append(
            SearchHit(doc_id=doc_id, kind=kind, chat_id=hit_chat, message_id=message_id, role=hit_role,
                      snippet=snippet_html(snippet[0] if snippet else ""), created_at=created_at)
        )
    total = int(rows[0][7]) if rows else 0
    return SearchPage(hits=hits, total_estimate=total)


def _ranked(
    conn: sqlite3.Connection,
    match: str,
    bounds: tuple[int, int],
    limit: int,
    offset: int,
    chat_id: str | None,
    role: str | None,
) -> list[tuple[Any, ...]]:
    sql = (
        "SELECT f.rowid, d.doc_id, d.kind, d.chat_id, d.message_id, d.role, d.created_at, "
        "count(*) OVER () FROM search_fts f JOIN search_docs d ON d.rowid = f.rowid "
        "WHERE search_fts MATCH ? AND f.rowid BETWEEN ? AND ?"
    )
    params: list[Any] = [match, *bounds]
    if chat_id is not None:
        sql += " AND d.chat_id = ?"
        params.append(chat_id)
    if role is not None:
        sql += " AND d.role = ?"
        params.append(role)
    sql += " ORDER BY f.rank, f.rowid DESC LIMIT ? OFFSET ?"
    params += [limit, offset]
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "fts5" in str(exc):  # a query FTS5 cannot parse matches nothing
            log.debug("fts5 refused a query: %s", exc)
            return []
        raise
