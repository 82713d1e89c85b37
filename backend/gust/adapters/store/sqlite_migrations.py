"""Schema migrations of the SQLite store, and applying them."""

from __future__ import annotations

import logging
import sqlite3
import time

from gust.adapters.store.sqlite_accounts import MIGRATIONS as ACCOUNTS_MIGRATIONS
from gust.adapters.store.sqlite_extras import MIGRATIONS as EXTRAS_MIGRATIONS
from gust.adapters.store.sqlite_files import MIGRATIONS as FILES_MIGRATIONS
from gust.adapters.store.sqlite_search import MIGRATIONS as SEARCH_MIGRATIONS
from gust.adapters.store.sqlite_shares import MIGRATIONS as SHARES_MIGRATIONS
from gust.adapters.store.sqlite_usage import MIGRATIONS as USAGE_MIGRATIONS

log = logging.getLogger(__name__)

# Named schema migrations, applied once each in this order and recorded in the
# schema_migrations table. Never edit a released entry: append a new one. Features
# that keep their own tables add their migrations in their own module (see
# FEATURE_MIGRATIONS) so they never collide on a number.
CORE_MIGRATIONS: list[tuple[str, str]] = [
    ("0001_core", """
    CREATE TABLE teams (id TEXT PRIMARY KEY, data TEXT NOT NULL);
    CREATE TABLE users (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        team_id TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX users_team ON users (team_id);
    CREATE TABLE chats (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        updated_at REAL NOT NULL,
        archived INTEGER NOT NULL DEFAULT 0,
        data TEXT NOT NULL
    );
    CREATE INDEX chats_user_updated ON chats (user_id, updated_at DESC, id DESC);
    CREATE TABLE messages (
        id TEXT PRIMARY KEY,
        chat_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        status TEXT NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX messages_chat_created ON messages (chat_id, created_at, id);
    CREATE INDEX messages_status ON messages (status);
    CREATE TABLE locks (name TEXT PRIMARY KEY, owner TEXT NOT NULL, expires_at REAL NOT NULL);
    """),
]

# Migrations contributed by feature modules (search state, accounts...), appended here.
FEATURE_MIGRATIONS: list[tuple[str, str]] = [*SEARCH_MIGRATIONS, *ACCOUNTS_MIGRATIONS, *USAGE_MIGRATIONS]
FEATURE_MIGRATIONS += SHARES_MIGRATIONS
FEATURE_MIGRATIONS += EXTRAS_MIGRATIONS
FEATURE_MIGRATIONS += FILES_MIGRATIONS


def all_migrations() -> list[tuple[str, str]]:
    return [*CORE_MIGRATIONS, *FEATURE_MIGRATIONS]


def sql_statements(script: str) -> list[str]:
    """A migration script's statements; a trigger's body (`BEGIN ...; END`) stays whole."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n\t;"):
                statements.append(buffer)
            buffer = ""
    return statements


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Apply the migrations this database lacks, each once, in order (safe beside other processes)."""
    # IMMEDIATE: take the write lock first (an implicit transaction that reads, then
    # writes, gets "locked" at once when another process writes in between).
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    conn.execute("COMMIT")
    applied = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
    known = [name for name, _ in all_migrations()]
    unknown = applied - set(known)
    if unknown:
        raise RuntimeError(
            f"{path} has schema migrations this Gust does not know ({sorted(unknown)}): "
            "it was written by a newer version; upgrade Gust or restore a backup"
        )
    for name, script in all_migrations():
        if name in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process (a gunicorn worker booting alongside) may have applied it
            # while this one waited for the write lock.
            done = conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone()
            if not done:
                log.info("applying schema migration %s to %s", name, path)
                for statement in sql_statements(script):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, time.time())
                )
                count = conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0]
                conn.execute(f"PRAGMA user_version = {int(count)}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        applied.add(name)
