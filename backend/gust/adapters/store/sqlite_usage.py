"""Usage sums in the SQLite store: one GROUP BY over the messages' JSON usage.

Usage marked `imported` (it came from an import file, services/import_formats.py) is shown
on its answer but never summed: a file can claim anything.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from gust.ports.usage_store import UsageRow

T = TypeVar("T")

MIGRATIONS: list[tuple[str, str]] = [
    ("0300_usage", """
    CREATE INDEX messages_user_created ON messages (user_id, created_at);
    CREATE INDEX messages_team_created ON messages (json_extract(data, '$.team_id'), created_at);
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


class SQLiteUsageMixin:
    """Mixed into SQLiteStore (uses its `_read` worker-thread helper)."""

    if TYPE_CHECKING:

        async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

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
        rows = await self._read(lambda conn: conn.execute(sql, params).fetchall())
        return [
            UsageRow(
                user_id=r[0],
                model=r[1],
                messages=int(r[2]),
                prompt_tokens=int(r[3]),
                completion_tokens=int(r[4]),
                cost=float(r[5]),
                estimated_messages=int(r[6]),
            )
            for r in rows
        ]
