"""Message deletion, answer feedback and the prompt library in the SQLite store."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, TypeVar

from gust.domain.ids import new_id, now
from gust.ports.extras_store import Prompt, PromptConflict, scope_key

T = TypeVar("T")

MIGRATIONS: list[tuple[str, str]] = [
    ("0500_prompts", """
    CREATE TABLE prompts (
        id TEXT PRIMARY KEY,
        scope TEXT NOT NULL,
        command TEXT NOT NULL,
        user_id TEXT NOT NULL,
        team_id TEXT,
        data TEXT NOT NULL,
        UNIQUE (scope, command)
    );
    CREATE INDEX prompts_user ON prompts (user_id);
    CREATE INDEX prompts_team ON prompts (team_id);
    CREATE TABLE prompt_versions (
        id TEXT NOT NULL,
        version INTEGER NOT NULL,
        data TEXT NOT NULL,
        PRIMARY KEY (id, version)
    );
    """),
    # The tags of chats, indexed: kept by triggers from the chats' JSON (the only writer),
    # so `GET /api/chats?tag=` reads an index instead of every chat of the user.
    ("0510_chat_tags", """
    CREATE TABLE chat_tags (
        chat_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (user_id, tag, chat_id)
    ) WITHOUT ROWID;
    CREATE INDEX chat_tags_chat ON chat_tags (chat_id);
    INSERT OR IGNORE INTO chat_tags (chat_id, user_id, tag)
        SELECT chats.id, chats.user_id, tags.value FROM chats, json_each(chats.data, '$.tags') AS tags;
    CREATE TRIGGER chat_tags_insert AFTER INSERT ON chats BEGIN
        INSERT OR IGNORE INTO chat_tags (chat_id, user_id, tag)
            SELECT new.id, new.user_id, value FROM json_each(new.data, '$.tags');
    END;
    CREATE TRIGGER chat_tags_update AFTER UPDATE OF data ON chats
    WHEN json_extract(old.data, '$.tags') IS NOT json_extract(new.data, '$.tags') BEGIN
        DELETE FROM chat_tags WHERE chat_id = old.id;
        INSERT OR IGNORE INTO chat_tags (chat_id, user_id, tag)
            SELECT new.id, new.user_id, value FROM json_each(new.data, '$.tags');
    END;
    CREATE TRIGGER chat_tags_delete AFTER DELETE ON chats BEGIN
        DELETE FROM chat_tags WHERE chat_id = old.id;
    END;
    """),
]


def _dumps(prompt: Prompt) -> str:
    return json.dumps(dataclasses.asdict(prompt), ensure_ascii=False, separators=(",", ":"))


def _prompt(raw: str) -> Prompt:
    return Prompt(**json.loads(raw))


class SQLiteExtrasMixin:
    """Mixed into SQLiteStore (uses its `_read`/`_write` worker-thread helpers)."""

    if TYPE_CHECKING:

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    # -- messages ------------------------------------------------------------------------
    async def delete_messages(self, user_id: str, chat_id: str, ids: Collection[str]) -> int:
        items = list(ids)

        def op(conn: sqlite3.Connection) -> int:
            deleted = 0
            for start in range(0, len(items), 500):
                chunk = items[start : start + 500]
                marks = ",".join("?" * len(chunk))
                cur = conn.execute(
                    f"DELETE FROM messages WHERE chat_id = ? AND user_id = ? AND id IN ({marks})",  # noqa: S608
                    [chat_id, user_id, *chunk],
                )
                deleted += cur.rowcount
                # In the same transaction: the search documents leave with the messages.
                conn.executemany(
                    "INSERT INTO search_tombstones (id, kind, target_id, user_id, created_at) "
                    "VALUES (?, 'message', ?, ?, ?)",
                    [(new_id(), mid, user_id, now()) for mid in chunk],
                )
            return deleted

        return await self._write(op)

    async def feedback_counts(self, team_id: str) -> dict[str, dict[str, int]]:
        sql = (
            "SELECT json_extract(data, '$.model'), json_extract(data, '$.feedback.rating'), COUNT(*) "
            "FROM messages WHERE json_extract(data, '$.team_id') = ? "
            "AND json_extract(data, '$.feedback.rating') IS NOT NULL GROUP BY 1, 2"
        )
        rows = await self._read(lambda conn: conn.execute(sql, (team_id,)).fetchall())
        counts: dict[str, dict[str, int]] = {}
        for model, rating, n in rows:
            entry = counts.setdefault(model or "unknown", {"up": 0, "down": 0})
            entry["up" if rating == 1 else "down"] += int(n)
        return counts

    # -- prompts -------------------------------------------------------------------------
    async def create_prompt(self, prompt: Prompt) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO prompts (id, scope, command, user_id, team_id, data) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (prompt.id, scope_key(prompt), prompt.command, prompt.user_id, prompt.team_id,
                     _dumps(prompt)),
                )
            except sqlite3.IntegrityError as exc:
                raise PromptConflict(prompt.command) from exc
            conn.execute(
                "INSERT INTO prompt_versions (id, version, data) VALUES (?, ?, ?)",
                (prompt.id, prompt.version, _dumps(prompt)),
            )

        await self._write(op)

    async def get_prompt(self, prompt_id: str) -> Prompt | None:
        row = await self._read(
            lambda conn: conn.execute("SELECT data FROM prompts WHERE id = ?", (prompt_id,)).fetchone()
        )
        return _prompt(row[0]) if row else None

    async def list_prompts(self, user_id: str, team_id: str) -> list[Prompt]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM prompts WHERE scope = ? OR scope = ? ORDER BY command, id",
                (f"user:{user_id}", f"team:{team_id}"),
            ).fetchall()
        )
        return [_prompt(r[0]) for r in rows]

    async def add_prompt_version(self, prompt: Prompt) -> None:
        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "UPDATE prompts SET command = ?, data = ? WHERE id = ?",
                    (prompt.command, _dumps(prompt), prompt.id),
                )
            except sqlite3.IntegrityError as exc:
                raise PromptConflict(prompt.command) from exc
            conn.execute(
                "INSERT INTO prompt_versions (id, version, data) VALUES (?, ?, ?)",
                (prompt.id, prompt.version, _dumps(prompt)),
            )

        await self._write(op)

    async def list_prompt_versions(self, prompt_id: str) -> list[Prompt]:
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT data FROM prompt_versions WHERE id = ? ORDER BY version DESC", (prompt_id,)
            ).fetchall()
        )
        return [_prompt(r[0]) for r in rows]

    async def delete_prompt(self, prompt_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM prompts WHERE id = ?", (prompt_id,))
            conn.execute("DELETE FROM prompt_versions WHERE id = ?", (prompt_id,))
            return cur.rowcount > 0

        return await self._write(op)
