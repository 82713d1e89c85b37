"""Usage sums in the MongoDB store, added up in Python over a projected cursor.

Not a $group pipeline: FerretDB 1.x (the wire-compatible server the tests run on) answers
$sum over dotted paths such as "$usage.prompt_tokens" with 0 and lacks $cond. The cursor
reads four small fields per answer in the requested range, with bounded memory. Usage
marked `imported` (from an import file) is skipped: shown on its answer, never counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING

from gust.ports.usage_store import LEGACY_API_USAGE_CHAT, UsageRecord, UsageRow

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

Doc = dict[str, Any]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


class MongoUsageMixin:
    """Mixed into MongoStore (uses its `_col`)."""

    if TYPE_CHECKING:

        def _col(self, name: str) -> AsyncCollection[Doc]: ...

    async def _ensure_usage_indexes(self) -> None:
        messages = self._col("messages")
        await messages.create_index([("user_id", ASCENDING), ("created_at", ASCENDING)], name="user_created")
        await messages.create_index([("team_id", ASCENDING), ("created_at", ASCENDING)], name="team_created")
        records = self._col("usage_records")
        await records.create_index([("user_id", ASCENDING), ("created_at", ASCENDING)], name="user_created")
        await records.create_index([("team_id", ASCENDING), ("created_at", ASCENDING)], name="team_created")
        await self._move_legacy_api_usage()

    async def _move_legacy_api_usage(self) -> None:
        """/v1 usage used to be content-free messages of a phantom chat: now usage records.
        Idempotent (upserts by id, then deletes), so a restart mid-way finishes the move."""
        messages, records = self._col("messages"), self._col("usage_records")
        async for doc in messages.find({"chat_id": LEGACY_API_USAGE_CHAT}):
            if isinstance(doc.get("usage"), dict):
                record = {
                    "user_id": doc["user_id"],
                    "team_id": doc.get("team_id"),
                    "created_at": doc.get("created_at"),
                    "model": doc.get("model"),
                    "usage": doc["usage"],
                    "source": "api",
                }
                await records.replace_one({"_id": doc["_id"]}, record, upsert=True)
            await messages.delete_one({"_id": doc["_id"]})

    async def add_usage_record(self, record: UsageRecord) -> None:
        await self._col("usage_records").insert_one(
            {
                "_id": record.id,
                "user_id": record.user_id,
                "team_id": record.team_id,
                "created_at": record.created_at,
                "model": record.model,
                "usage": record.usage,
                "source": record.source,
            }
        )

    async def usage_rows(
        self,
        *,
        team_id: str,
        user_id: str | None,
        since: float | None,
        until: float | None,
    ) -> list[UsageRow]:
        query: Doc = {"team_id": team_id, "usage": {"$ne": None}}
        if user_id is not None:
            query["user_id"] = user_id
        created: Doc = {}
        if since is not None:
            created["$gte"] = since
        if until is not None:
            created["$lt"] = until
        if created:
            query["created_at"] = created
        projection = {"_id": 0, "user_id": 1, "model": 1, "usage": 1}
        rows: dict[tuple[str, str | None], UsageRow] = {}
        async for doc in self._docs_with_usage(query, projection):
            usage = doc.get("usage")
            if not isinstance(usage, dict) or usage.get("imported") is True:
                continue  # imported usage is shown on its answer, never counted
            key = (doc["user_id"], doc.get("model"))
            row = rows.get(key)
            if row is None:
                row = rows[key] = UsageRow(user_id=key[0], model=key[1])
            row.messages += 1
            row.prompt_tokens += int(_number(usage.get("prompt_tokens")))
            row.completion_tokens += int(_number(usage.get("completion_tokens")))
            row.cost += _number(usage.get("cost"))
            row.estimated_messages += usage.get("estimated") is True
        return [rows[key] for key in sorted(rows, key=lambda k: (k[0], k[1] or ""))]

    async def _docs_with_usage(self, query: Doc, projection: Doc) -> AsyncIterator[Doc]:
        for name in ("messages", "usage_records"):
            async for doc in self._col(name).find(query, projection, batch_size=1000):
                yield doc
