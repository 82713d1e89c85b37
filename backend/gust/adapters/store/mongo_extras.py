"""Message deletion, answer feedback and the prompt library in the MongoDB store.

Collections: `prompts` (the current version, `_id` the prompt id, unique per scope and
command) and `prompt_versions` (every version)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

from gust.domain.ids import new_id, now
from gust.ports.extras_store import Prompt, PromptConflict, scope_key

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

Doc = dict[str, Any]


def _doc(prompt: Prompt) -> Doc:
    doc = dataclasses.asdict(prompt)
    doc["scope"] = scope_key(prompt)
    return doc


def _prompt(doc: Doc) -> Prompt:
    return Prompt(**{f.name: doc[f.name] for f in dataclasses.fields(Prompt)})


class MongoExtrasMixin:
    """Mixed into MongoStore (uses its `_col`)."""

    if TYPE_CHECKING:

        def _col(self, name: str) -> AsyncCollection[Doc]: ...

    async def _ensure_extras_indexes(self) -> None:
        await self._col("chats").create_index([("user_id", ASCENDING), ("tags", ASCENDING)], name="user_tags")
        await self._col("prompts").create_index(
            [("scope", ASCENDING), ("command", ASCENDING)], name="scope_command", unique=True
        )
        await self._col("prompt_versions").create_index(
            [("id", ASCENDING), ("version", DESCENDING)], name="id_version", unique=True
        )

    # -- messages ------------------------------------------------------------------------
    async def delete_messages(self, user_id: str, chat_id: str, ids: Collection[str]) -> int:
        items = list(ids)
        if not items:
            return 0
        # Tombstones first: a crash between the two cannot leave hits of deleted messages.
        await self._col("search_tombstones").insert_many(
            [
                {"_id": new_id(), "kind": "message", "target_id": mid, "user_id": user_id,
                 "created_at": now()}
                for mid in items
            ]
        )
        result = await self._col("messages").delete_many(
            {"_id": {"$in": items}, "chat_id": chat_id, "user_id": user_id}
        )
        return result.deleted_count

    async def feedback_counts(self, team_id: str) -> dict[str, dict[str, int]]:
        cursor = self._col("messages").find(
            {"team_id": team_id, "feedback.rating": {"$in": [1, -1]}}, {"model": 1, "feedback.rating": 1}
        )
        counts: dict[str, dict[str, int]] = {}
        async for doc in cursor:
            entry = counts.setdefault(doc.get("model") or "unknown", {"up": 0, "down": 0})
            entry["up" if doc["feedback"]["rating"] == 1 else "down"] += 1
        return counts

    # -- prompts -------------------------------------------------------------------------
    async def create_prompt(self, prompt: Prompt) -> None:
        try:
            await self._col("prompts").insert_one({"_id": prompt.id, **_doc(prompt)})
        except DuplicateKeyError as exc:
            raise PromptConflict(prompt.command) from exc
        await self._col("prompt_versions").insert_one(_doc(prompt))

    async def get_prompt(self, prompt_id: str) -> Prompt | None:
        doc = await self._col("prompts").find_one({"_id": prompt_id})
        return _prompt(doc) if doc else None

    async def list_prompts(self, user_id: str, team_id: str) -> list[Prompt]:
        cursor = self._col("prompts").find(
            {"scope": {"$in": [f"user:{user_id}", f"team:{team_id}"]}}
        ).sort([("command", ASCENDING), ("_id", ASCENDING)])
        return [_prompt(doc) async for doc in cursor]

    async def add_prompt_version(self, prompt: Prompt) -> None:
        # Checked first: FerretDB reports a unique index clash on replace as a generic
        # error; the unique index still guards against two writers at once on MongoDB.
        taken = await self._col("prompts").find_one(
            {"scope": scope_key(prompt), "command": prompt.command, "_id": {"$ne": prompt.id}}, {"_id": 1}
        )
        if taken is not None:
            raise PromptConflict(prompt.command)
        try:
            await self._col("prompts").replace_one({"_id": prompt.id}, {"_id": prompt.id, **_doc(prompt)})
        except DuplicateKeyError as exc:
            raise PromptConflict(prompt.command) from exc
        await self._col("prompt_versions").insert_one(_doc(prompt))

    async def list_prompt_versions(self, prompt_id: str) -> list[Prompt]:
        cursor = self._col("prompt_versions").find({"id": prompt_id}).sort("version", DESCENDING)
        return [_prompt(doc) async for doc in cursor]

    async def delete_prompt(self, prompt_id: str) -> bool:
        result = await self._col("prompts").delete_one({"_id": prompt_id})
        await self._col("prompt_versions").delete_many({"id": prompt_id})
        return result.deleted_count > 0
