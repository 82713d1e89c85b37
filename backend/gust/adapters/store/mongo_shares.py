"""Share snapshots in the MongoDB store: collection `shares`, `_id` the public share id."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING

from gust.ports.shares_store import Share

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

Doc = dict[str, Any]


def _share(doc: Doc) -> Share:
    return Share(
        id=doc["_id"],
        chat_id=doc["chat_id"],
        user_id=doc["user_id"],
        team_id=doc["team_id"],
        title=doc["title"],
        model=doc.get("model"),
        created_at=doc["created_at"],
        messages=list(doc.get("messages") or []),
    )


class MongoSharesMixin:
    """Mixed into MongoStore (uses its `_col`)."""

    if TYPE_CHECKING:

        def _col(self, name: str) -> AsyncCollection[Doc]: ...

    async def _ensure_shares_indexes(self) -> None:
        await self._col("shares").create_index(
            [("user_id", ASCENDING), ("chat_id", ASCENDING)], name="user_chat", unique=True
        )

    async def put_share(self, share: Share) -> Share | None:
        shares = self._col("shares")
        previous = await shares.find_one_and_delete({"user_id": share.user_id, "chat_id": share.chat_id})
        await shares.insert_one(
            {
                "_id": share.id,
                "chat_id": share.chat_id,
                "user_id": share.user_id,
                "team_id": share.team_id,
                "title": share.title,
                "model": share.model,
                "created_at": share.created_at,
                "messages": share.messages,
            }
        )
        return _share(previous) if previous else None

    async def get_share(self, share_id: str) -> Share | None:
        doc = await self._col("shares").find_one({"_id": share_id})
        return _share(doc) if doc else None

    async def get_chat_share(self, user_id: str, chat_id: str) -> Share | None:
        doc = await self._col("shares").find_one({"user_id": user_id, "chat_id": chat_id})
        return _share(doc) if doc else None

    async def delete_chat_share(self, user_id: str, chat_id: str) -> bool:
        result = await self._col("shares").delete_one({"user_id": user_id, "chat_id": chat_id})
        return result.deleted_count > 0
