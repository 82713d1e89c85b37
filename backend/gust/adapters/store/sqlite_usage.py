"""Usage sums in the SQLite store: one GROUP BY over the messages' JSON usage.

Usage marked `imported` (it came from an import file, services/import_formats.py) is shown
on its answer but never summed: a file can claim anything.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from gust.ports.usage_store import UsageRecord, UsageRow

T = TypeVar("T")

MIGRATIONS: list[tuple[str, str]] = [
    ("0300_usage", """
    CREATE INDEX messages_user_created ON messages (user_id, created_at);
    CREATE INDEX messages_team_created ON messages (json_extract(data, '$.team_id'), created_at);
    """),
    # /v1 usage used to be content-free messages of a phantom chat: now records of its own.
    ("0310_usage_records", """
    CREATE TABLE usage_records (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        team_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX usage_records_user_created ON usage_records (user_id, created_at);
    CREATE INDEX usage_records_team_created ON usage_records (team_id, created_at);
    INSERT INTO usage_records (id, user_id, team_id, created_at, data)
        SELECT id, user_id, json_extract(data, '$.team_id'), created_at,
               json_object('model', json_extract(data, '$.model'),
                           'usage', json(json_extract(data, '$.usage')), 'source', 'api')
        FROM messages
        WHERE chat_id = 'openai-api' AND json_extract(data, '$.usage') IS NOT NULL;
    DELETE FROM messages WHERE chat_id = 'openai-api';
    """),
]

_SELECT = """
SELECT user_id, json_extract(data, '$.model'), count(*),
       total(json_extract(data, '$.usage.prompt_tokens')),
       total(json_extract(data, '$.usage.completion_tokens')),
       total(json_extract(data, '$.usage.cost')),
       total(json_extract(data, '$.usage.estimated') = 1)
FROM messages
WHERE {scope} AND created_at >= ? AND created_at < ? AND json_extract(data, '$.usage') IS NOT NULL
  AND json_extract(data, '$.usage.imported') IS NOT 1
GROUP BY 1, 2
ORDER BY 1, 2
"""


_SELECT_RECORDS = """
SELECT user_id, json_extract(data, '$.model'), count(*),
       total(json_extract(data, '$.usage.prompt_tokens')),
       total(json_extract(data, '$.usage.completion_tokens')),
       total(json_extract(data, '$.usage.cost')),
       total(json_extract(data, '$.usage.estimated') = 1)
FROM usage_records
WHERE {scope} AND created_at >= ? AND created_at < ?
GROUP BY 1, 2
"""


class SQLiteUsageMixin:
    """Mixed into SQLiteStore (uses its `_read` worker-thread helper)."""

    if TYPE_CHECKING:

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

        async def _write(self, fn: Callable[[sqlite3.Connection], T], *, point: bool = False) -> T: ...

    async def add_usage_record(self, record: UsageRecord) -> None:
        data = json.dumps({"model": record.model, "usage": record.usage, "source": record.source})
        values = (record.id, record.user_id, record.team_id, record.created_at, data)
        await self._write(
            lambda conn: conn.execute(
                "INSERT INTO usage_records (id, user_id, team_id, created_at, data) VALUES (?, ?, ?, ?, ?)",
                values,
            ),
            point=True,
        )

    async def usage_rows(
        self,
        *,
        team_id: str,
        user_id: str | None,
        since: float | None,
        until: float | None,
    ) -> list[UsageRow]:
        params: list[Any]
        if user_id is not None:
            # Every message of a user is in the user's team: the user filter is the narrower one.
            scope, params = "user_id = ? AND json_extract(data, '$.team_id') = ?", [user_id, team_id]
        else:
            scope, params = "json_extract(data, '$.team_id') = ?", [team_id]
        params.append(since if since is not None else float("-inf"))
        params.append(until if until is not None else float("inf"))
        sql = _SELECT.format(scope=scope)
        records_scope = "user_id = ? AND team_id = ?" if user_id is not None else "team_id = ?"
        records_sql = _SELECT_RECORDS.format(scope=records_scope)

        def read(conn: sqlite3.Connection) -> list[Any]:
            return [*conn.execute(sql, params).fetchall(), *conn.execute(records_sql, params).fetchall()]

        rows: dict[tuple[str, str | None], UsageRow] = {}
        for r in await self._read(read):
            row = rows.setdefault((r[0], r[1]), UsageRow(user_id=r[0], model=r[1]))
            row.messages += int(r[2])
            row.prompt_tokens += int(r[3])
            row.completion_tokens += int(r[4])
            row.cost += float(r[5])
            row.estimated_messages += int(r[6])
        return [rows[key] for key in sorted(rows, key=lambda k: (k[0], k[1] or ""))]
