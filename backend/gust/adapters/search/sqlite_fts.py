"""Search on SQLite FTS5: the embedded default, in its own file (DATA_DIR/search.db).

What a query costs must not grow with the number of users. Two layouts see to it:
- users are spread over FTS5 tables ("shards") of USERS_PER_SHARD users each. bm25 reads a
  phrase's whole doclist for its IDF, and a prefix query merges the doclists of every term
  it matches: in one shard both cost what that shard holds, never what the index holds;
- inside a shard each user's documents get rowids in a range of their own
  (user ordinal << 32 | sequence): matching reads only the caller's slice of each doclist.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from gust.adapters.search.query import FtsQuery, build_fts_query, typo_variants
from gust.adapters.sqlite_threads import SQLiteThreads
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
USERS_PER_SHARD = 16  # at ~2,000 documents a user, ~32,000 documents a shard
TITLE_WEIGHT = 10.0
CONTENT_WEIGHT = 1.0
SNIPPET_TOKENS = 24
_CHUNK = 500

SCHEMA = [
    "CREATE TABLE search_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE search_users (
        user_id TEXT PRIMARY KEY,
        ordinal INTEGER NOT NULL UNIQUE,
        next_seq INTEGER NOT NULL
    )""",
    """CREATE TABLE search_docs (
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
    "CREATE INDEX search_docs_chat ON search_docs (chat_id)",
]
# Version 1 kept one FTS table for everyone. The index is derived data: an older layout is
# dropped, and the start-up reconcile finds every document missing and sends it again.
SCHEMA_VERSION = 2


def _fts(shard: int) -> str:
    return f"search_fts_{int(shard)}"


def _vocab(shard: int) -> str:
    return f"search_vocab_{int(shard)}"


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _marks(n: int) -> str:
    return ",".join("?" * n)


class SQLiteSearchIndex:
    """SearchIndex on one SQLite file: one writer thread, a few reader threads (WAL)."""

    name = "sqlite-fts5"

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout: float = 5.0,
        readers: int = 2,
        users_per_shard: int = USERS_PER_SHARD,
    ) -> None:
        self.path = str(path)
        self.users_per_shard = users_per_shard  # a new file records it; an existing one's wins
        self.busy_timeout = busy_timeout
        self._db = SQLiteThreads(self.path, name="gust-search", readers=readers, busy_timeout=busy_timeout)

    # -- plumbing ------------------------------------------------------------------
    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._db.read(fn)
        except sqlite3.Error as exc:
            raise SearchIndexError(f"sqlite search index: {exc}") from exc

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._db.write(fn)
        except sqlite3.Error as exc:
            raise SearchIndexError(f"sqlite search index: {exc}") from exc

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db.start()  # start() is retried after a failure: the pools are kept
        self.users_per_shard = await self._write(self._migrate)

    def _migrate(self, conn: sqlite3.Connection) -> int:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RuntimeError("the search index was written by a newer Gust; upgrade or delete it")
        if version < SCHEMA_VERSION:
            if version:
                log.warning("search index %s has an older layout: rebuilding it", self.path)
                for (name,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'search%' "
                    "AND sql LIKE 'CREATE VIRTUAL TABLE%'"
                ).fetchall():
                    conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                for name in ("search_docs", "search_users", "search_meta"):
                    conn.execute(f"DROP TABLE IF EXISTS {name}")
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO search_meta (key, value) VALUES ('users_per_shard', ?)",
                (str(self.users_per_shard),),
            )
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        row = conn.execute("SELECT value FROM search_meta WHERE key = 'users_per_shard'").fetchone()
        return int(row[0])

    async def close(self) -> None:
        self._db.close()

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1 FROM search_docs LIMIT 1").fetchall())

    # -- writes --------------------------------------------------------------------
    async def upsert(self, documents: Sequence[IndexDocument]) -> None:
        if documents:
            await self._write(lambda conn: _upsert(conn, documents, self.users_per_shard))

    async def delete(self, doc_ids: Sequence[str]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for chunk in _chunks(list(doc_ids)):
                sql = f"SELECT rowid FROM search_docs WHERE doc_id IN ({_marks(len(chunk))})"  # noqa: S608
                _delete_rowids(conn, [r[0] for r in conn.execute(sql, chunk)], self.users_per_shard)

        if doc_ids:
            await self._write(op)

    async def delete_chat_documents(self, user_id: str, chat_ids: Sequence[str]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for chunk in _chunks(list(chat_ids)):
                sql = (
                    "SELECT rowid FROM search_docs "  # noqa: S608 - placeholders only
                    f"WHERE user_id = ? AND chat_id IN ({_marks(len(chunk))})"
                )
                rowids = [r[0] for r in conn.execute(sql, [user_id, *chunk])]
                _delete_rowids(conn, rowids, self.users_per_shard)

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
            bounds = _user_bounds(conn, user_id, self.users_per_shard)
            if bounds is None:
                return 0
            sql = "SELECT count(*) FROM search_docs WHERE rowid BETWEEN ? AND ?"
            return int(conn.execute(sql, bounds[:2]).fetchone()[0])

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
        run = partial(_search, users_per_shard=self.users_per_shard, user_id=user_id, parsed=parsed,
                      limit=limit, offset=offset, chat_id=chat_id, role=role)
        return await self._read(run)


# -- worker-thread functions -----------------------------------------------------------
def _user_bounds(conn: sqlite3.Connection, user_id: str, users_per_shard: int) -> tuple[int, int, int] | None:
    """The user's rowid range and shard, or None for a user without documents."""
    row = conn.execute("SELECT ordinal FROM search_users WHERE user_id = ?", (user_id,)).fetchone()
    if row is None:
        return None
    ordinal = int(row[0])
    base = ordinal << SEQ_BITS
    return base, base | SEQ_MASK, ordinal // users_per_shard


def _ensure_shard(conn: sqlite3.Connection, shard: int) -> None:
    fts = _fts(shard)
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (fts,)).fetchone()
    if exists:
        return
    conn.execute(
        f"CREATE VIRTUAL TABLE {fts} USING fts5(title, content, "
        "tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4')"
    )
    conn.execute(f"CREATE VIRTUAL TABLE {_vocab(shard)} USING fts5vocab({fts}, 'row')")
    conn.execute(
        f"INSERT INTO {fts} ({fts}, rank) VALUES ('rank', 'bm25({TITLE_WEIGHT}, {CONTENT_WEIGHT})')"  # noqa: S608
    )


def _allocate(conn: sqlite3.Connection, user_id: str, count: int, users_per_shard: int) -> tuple[int, int]:
    """Reserve `count` rowids in the user's range; return the first and the user's shard."""
    row = conn.execute("SELECT ordinal, next_seq FROM search_users WHERE user_id = ?", (user_id,)).fetchone()
    if row is None:
        ordinal = conn.execute("SELECT coalesce(max(ordinal), 0) + 1 FROM search_users").fetchone()[0]
        conn.execute(
            "INSERT INTO search_users (user_id, ordinal, next_seq) VALUES (?, ?, ?)", (user_id, ordinal, 1)
        )
        _ensure_shard(conn, int(ordinal) // users_per_shard)
        seq = 1
    else:
        ordinal, seq = row
    if seq + count > SEQ_MASK:
        raise SearchIndexError(f"user {user_id} has used up its range of search rowids")
    conn.execute("UPDATE search_users SET next_seq = ? WHERE user_id = ?", (seq + count, user_id))
    return (int(ordinal) << SEQ_BITS) | seq, int(ordinal) // users_per_shard


def _page(conn: sqlite3.Connection, *, after: str, limit: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT doc_id, kind, user_id, chat_id, message_id FROM search_docs "
        "WHERE doc_id > ? ORDER BY doc_id LIMIT ?",
        (after, limit),
    ).fetchall()


def _upsert(conn: sqlite3.Connection, documents: Sequence[IndexDocument], users_per_shard: int) -> None:
    latest = {doc.id: doc for doc in documents}  # the last version of an id in a batch wins
    existing: dict[str, int] = {}
    ids = list(latest)
    for chunk in _chunks(ids):
        sql = f"SELECT doc_id, rowid FROM search_docs WHERE doc_id IN ({_marks(len(chunk))})"  # noqa: S608
        existing.update((r[0], r[1]) for r in conn.execute(sql, chunk))
    new_by_user: dict[str, list[IndexDocument]] = {}
    for doc in latest.values():
        rowid = existing.get(doc.id)
        if rowid is None:
            new_by_user.setdefault(doc.user_id, []).append(doc)
            continue
        # Rewritten even when the fingerprint matches: `reindex --full` repairs FTS rows too.
        shard = (rowid >> SEQ_BITS) // users_per_shard
        conn.execute(f"DELETE FROM {_fts(shard)} WHERE rowid = ?", (rowid,))  # noqa: S608
        conn.execute("DELETE FROM search_docs WHERE rowid = ?", (rowid,))
        _insert(conn, rowid, shard, doc)
    for user_id, docs in new_by_user.items():
        first, shard = _allocate(conn, user_id, len(docs), users_per_shard)
        for i, doc in enumerate(docs):
            _insert(conn, first + i, shard, doc)


def _insert(conn: sqlite3.Connection, rowid: int, shard: int, doc: IndexDocument) -> None:
    conn.execute(
        "INSERT INTO search_docs (rowid, doc_id, kind, user_id, team_id, chat_id, message_id, role, "
        "created_at, fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rowid, doc.id, doc.kind, doc.user_id, doc.team_id, doc.chat_id, doc.message_id, doc.role,
         doc.created_at, doc.fingerprint),
    )
    conn.execute(
        f"INSERT INTO {_fts(shard)} (rowid, title, content) VALUES (?, ?, ?)",  # noqa: S608
        (rowid, doc.title, doc.content),
    )


def _delete_rowids(conn: sqlite3.Connection, rowids: list[int], users_per_shard: int) -> None:
    by_shard: dict[int, list[int]] = {}
    for rowid in rowids:
        by_shard.setdefault((rowid >> SEQ_BITS) // users_per_shard, []).append(rowid)
    for shard, shard_rowids in by_shard.items():
        for chunk in _chunks(shard_rowids):
            marks = _marks(len(chunk))
            conn.execute(f"DELETE FROM {_fts(shard)} WHERE rowid IN ({marks})", chunk)  # noqa: S608
            conn.execute(f"DELETE FROM search_docs WHERE rowid IN ({marks})", chunk)  # noqa: S608


def _search(
    conn: sqlite3.Connection,
    *,
    users_per_shard: int,
    user_id: str,
    parsed: FtsQuery,
    limit: int,
    offset: int,
    chat_id: str | None,
    role: str | None,
) -> SearchPage:
    found = _user_bounds(conn, user_id, users_per_shard)
    if found is None:
        return SearchPage(hits=[], total_estimate=0)
    lo, hi, shard = found
    fts = _fts(shard)
    match = parsed.expression
    rows = _ranked(conn, fts, match, (lo, hi), limit, offset, chat_id, role)
    if not rows and offset == 0 and parsed.typo_terms:
        # Nothing matched as typed: allow one typo in each long word, keeping only the
        # spellings this shard's vocabulary holds (one B-tree lookup each).
        fixes: dict[str, list[str]] = {}
        for term in parsed.typo_terms:
            variants = sorted(typo_variants(term))
            known = conn.execute(
                f"SELECT term FROM {_vocab(shard)} WHERE term IN ({_marks(len(variants))})",  # noqa: S608
                variants,
            ).fetchall()
            fixes[term] = [r[0] for r in known]
        if any(fixes.values()):
            match = parsed.with_alternatives(fixes)
            rows = _ranked(conn, fts, match, (lo, hi), limit, offset, chat_id, role)
    hits = []
    for rowid, doc_id, kind, hit_chat, message_id, hit_role, created_at, _total in rows:
        snippet = conn.execute(
            f"SELECT snippet({fts}, -1, ?, ?, '…', ?) FROM {fts} WHERE {fts} MATCH ? AND rowid = ?",  # noqa: S608
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
    fts: str,
    match: str,
    bounds: tuple[int, int],
    limit: int,
    offset: int,
    chat_id: str | None,
    role: str | None,
) -> list[tuple[Any, ...]]:
    # The FTS table in a CTE: matched and ranked first, joined to the metadata after.
    sql = (
        f"WITH m AS (SELECT rowid, rank FROM {fts} WHERE {fts} MATCH ? AND rowid BETWEEN ? AND ?) "  # noqa: S608
        "SELECT m.rowid, d.doc_id, d.kind, d.chat_id, d.message_id, d.role, d.created_at, count(*) OVER () "
        "FROM m JOIN search_docs d ON d.rowid = m.rowid"
    )
    params: list[Any] = [match, *bounds]
    conditions = []
    if chat_id is not None:
        conditions.append("d.chat_id = ?")
        params.append(chat_id)
    if role is not None:
        conditions.append("d.role = ?")
        params.append(role)
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += " ORDER BY m.rank, m.rowid DESC LIMIT ? OFFSET ?"
    params += [limit, offset]
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "fts5" in str(exc):  # a query FTS5 cannot parse matches nothing (the text is not logged)
            log.debug("fts5 refused a query")
            return []
        raise
