"""Search index state in the MongoDB store: pending records, tombstones, cursor walks."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, UpdateOne

from gust.adapters.store.records import from_doc
from gust.domain.ids import new_id, now
from gust.domain.models import Chat, Message
from gust.ports.search_store import Tombstone

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

Doc = dict[str, Any]
_CHUNK = 500


def _chunks(ids: Collection[str]) -> list[list[str]]:
    items = list(ids)
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


class MongoSearchMixin:
    """Mixed into MongoStore (uses its `_col`)."""

    if TYPE_CHECKING:

        def _col(self, name: str) -> AsyncCollection[Doc]: ...

    async def _ensure_search_indexes(self) -> None:
        for name in ("chats", "messages"):
            await self._col(name).create_index(
                [("index_state", ASCENDING), ("_id", ASCENDING)], name="search_pending"
            )

    async def record_chat_tombstone(self, user_id: str, chat_id: str) -> None:
        """Called by delete_chat before it deletes anything: a crash cannot lose the deletion."""
        await self._col("search_tombstones").insert_one(
            {"_id": new_id(), "kind": "chat", "target_id": chat_id, "user_id": user_id, "created_at": now()}
        )

    async def list_pending_chats(self, *, limit: int) -> list[Chat]:
        cursor = self._col("chats").find({"index_state": "pending"}).sort("_id", ASCENDING).limit(limit)
        return [from_doc(Chat, doc) async for doc in cursor]

    async def list_pending_messages(self, *, limit: int) -> list[Message]:
        query = {"index_state": "pending", "status": {"$ne": "streaming"}}
        cursor = self._col("messages").find(query).sort("_id", ASCENDING).limit(limit)
        return [from_doc(Message, doc) async for doc in cursor]

    async def count_search_pending(self) -> int:
        chats = await self._col("chats").count_documents({"index_state": "pending"})
        messages = await self._col("messages").count_documents(
            {"index_state": "pending", "status": {"$ne": "streaming"}}
        )
        return chats + messages

    async def mark_chats_indexed(self, chats: Sequence[Chat]) -> int:
        ops = [
            UpdateOne(
                {"_id": c.id, "title": c.title, "updated_at": c.updated_at},
                {"$set": {"index_state": "indexed"}},
            )
            for c in chats
        ]
        return await self._bulk("chats", ops)

    async def mark_messages_indexed(self, messages: Sequence[Message]) -> int:
        ops = [
            UpdateOne(
                {"_id": m.id, "status": m.status, "content": m.content},
                {"$set": {"index_state": "indexed"}},
            )
            for m in messages
        ]
        return await self._bulk("messages", ops)

    async def _bulk(self, collection: str, ops: list[UpdateOne]) -> int:
        if not ops:
            return 0
        result = await self._col(collection).bulk_write(ops, ordered=False)
        return result.matched_count

    async def list_search_tombstones(self, *, limit: int) -> list[Tombstone]:
        cursor = self._col("search_tombstones").find({}).sort("_id", ASCENDING).limit(limit)
        return [
            Tombstone(id=d["_id"], kind=d["kind"], target_id=d["target_id"], user_id=d["user_id"],
                      created_at=d["created_at"])
            async for d in cursor
        ]

    async def add_search_tombstone(self, tombstone: Tombstone) -> None:
        t = tombstone
        await self._col("search_tombstones").insert_one(
            {"_id": t.id, "kind": t.kind, "target_id": t.target_id, "user_id": t.user_id,
             "created_at": t.created_at}
        )

    async def clear_search_tombstones(self, ids: Sequence[str]) -> None:
        for chunk in _chunks(ids):
            await self._col("search_tombstones").delete_many({"_id": {"$in": chunk}})

    async def walk_chats(self, *, after: str | None, limit: int) -> list[Chat]:
        query: Doc = {"_id": {"$gt": after}} if after else {}
        cursor = self._col("chats").find(query).sort("_id", ASCENDING).limit(limit)
        return [from_doc(Chat, doc) async for doc in cursor]

    async def walk_messages(self, *, after: str | None, limit: int) -> list[Message]:
        query: Doc = {"_id": {"$gt": after}} if after else {}
        cursor = self._col("messages").find(query).sort("_id", ASCENDING).limit(limit)
        return [from_doc(Message, doc) async for doc in cursor]

    async def existing_chat_ids(self, ids: Collection[str]) -> set[str]:
        return await self._existing("chats", ids)

    async def existing_message_ids(self, ids: Collection[str]) -> set[str]:
        return await self._existing("messages", ids)

    async def _existing(self, collection: str, ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(ids):
            cursor = self._col(collection).find({"_id": {"$in": chunk}}, {"_id": 1})
            found.update([doc["_id"] async for doc in cursor])
        return found

    async def chat_titles(self, user_id: str, chat_ids: Collection[str]) -> dict[str, str]:
        titles: dict[str, str] = {}
        for chunk in _chunks(chat_ids):
            cursor = self._col("chats").find({"_id": {"$in": chunk}, "user_id": user_id}, {"title": 1})
            titles.update([(doc["_id"], doc["title"]) async for doc in cursor])
        return titles
