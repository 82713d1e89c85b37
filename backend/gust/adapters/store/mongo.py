"""MongoDB store on PyMongo's async API (AsyncMongoClient; Motor is end of life)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    ConnectionFailure,
    DuplicateKeyError,
    ExecutionTimeout,
    InvalidOperation,
    PyMongoError,
    WTimeoutError,
)
from pymongo.uri_parser import parse_uri

from gust.adapters.store.guard import StoreCalls, guarded
from gust.adapters.store.mongo_accounts import MongoAccountsMixin
from gust.adapters.store.mongo_extras import MongoExtrasMixin
from gust.adapters.store.mongo_files import MongoFilesMixin
from gust.adapters.store.mongo_search import MongoSearchMixin
from gust.adapters.store.mongo_shares import MongoSharesMixin
from gust.adapters.store.mongo_usage import MongoUsageMixin
from gust.adapters.store.records import check_changes, from_doc, mark_pending, to_doc
from gust.domain.errors import Conflict
from gust.domain.models import Chat, Message, Team, User
from gust.ports.store import ChatCursor

log = logging.getLogger(__name__)
Doc = dict[str, Any]


def _doc(record: Any) -> Doc:
    data = to_doc(record)
    data["_id"] = data.pop("id")
    return data


@guarded(shield=True)
class MongoStore(
    MongoSearchMixin, MongoAccountsMixin, MongoUsageMixin, MongoSharesMixin, MongoExtrasMixin,
    MongoFilesMixin,
):
    """Store on MongoDB (or a wire-compatible server such as FerretDB).

    The client is created in start(), on the running event loop: an AsyncMongoClient
    belongs to the loop it was first used on. A server that cannot be reached at start-up
    does not stop the process: it serves /health, reports the store down in /health/ready,
    and creates the indexes in the background once the server answers.

    Every call is bounded by PyMongo's own timeouts (`timeout_ms`: timeoutMS, server
    selection, connect and socket), runs shielded from its caller's cancellation, and
    raises StoreUnavailable when the server cannot be reached (adapters/store/guard.py).
    """

    name = "mongodb"

    def __init__(
        self,
        uri: str,
        db_name: str,
        *,
        timeout_ms: int = 5000,
        start_timeout: float = 3.0,
        ping_timeout: float = 2.0,
        index_retry_max: float = 30.0,
    ) -> None:
        self.uri = uri
        self.db_name = db_name
        self.timeout_ms = timeout_ms
        self.start_timeout = start_timeout
        self.ping_timeout = ping_timeout  # under /health/ready's own limit, so the error shows
        self.index_retry_max = index_retry_max
        self.indexes_ready = False
        self._client: AsyncMongoClient[Doc] | None = None
        self._index_task: asyncio.Task[None] | None = None
        self.calls = StoreCalls(self.name)

    def unavailable(self, exc: BaseException) -> str | None:
        """Why `exc` means the server cannot be reached now (None: any other error)."""
        if isinstance(exc, ConnectionFailure | ExecutionTimeout | WTimeoutError) or (
            isinstance(exc, PyMongoError) and exc.timeout
        ):
            return _first_line(exc)
        if (isinstance(exc, InvalidOperation) and "after close" in str(exc)) or (
            isinstance(exc, RuntimeError) and "before start()" in str(exc)
        ):
            return "the client is closed (shutting down)"
        return None

    def client_options(self) -> dict[str, Any]:
        """Timeouts for every call, unless the URI sets its own."""
        in_uri = {key.lower() for key in parse_uri(self.uri)["options"]}
        defaults = {
            "timeoutMS": self.timeout_ms,
            "serverSelectionTimeoutMS": self.timeout_ms,
            "connectTimeoutMS": self.timeout_ms,
            "socketTimeoutMS": self.timeout_ms,
        }
        return {key: value for key, value in defaults.items() if key.lower() not in in_uri}

    def _col(self, name: str) -> AsyncCollection[Doc]:
        if self._client is None:
            raise RuntimeError("MongoStore used before start()")
        return self._client[self.db_name][name]

    async def start(self) -> None:
        self._client = AsyncMongoClient(self.uri, tz_aware=True, **self.client_options())
        try:
            with pymongo.timeout(self.start_timeout):
                await self.ensure_indexes()
        except PyMongoError as exc:
            log.error("MongoDB unreachable at start-up, creating indexes in the background: %s",
                      _first_line(exc))
            self._index_task = asyncio.create_task(self._create_indexes_later(), name="mongo-indexes")
        else:
            self.indexes_ready = True

    async def _create_indexes_later(self) -> None:
        delay = 1.0
        attempt = 1
        while True:
            await asyncio.sleep(delay)
            attempt += 1
            try:
                with pymongo.timeout(self.timeout_ms / 1000):
                    await self.ensure_indexes()
            except PyMongoError as exc:
                _reraise_cancellation(exc)
                log.warning("MongoDB indexes: attempt %d failed: %s", attempt, _first_line(exc))
                delay = min(delay * 2, self.index_retry_max)
                continue
            self.indexes_ready = True
            log.info("MongoDB indexes created after %d attempts", attempt)
            return

    async def ensure_indexes(self) -> None:
        await self._col("users").create_index([("email", ASCENDING)], unique=True, name="email_unique")
        await self._col("users").create_index([("team_id", ASCENDING)], name="team")
        await self._col("chats").create_index(
            [("user_id", ASCENDING), ("updated_at", DESCENDING), ("_id", DESCENDING)], name="user_updated"
        )
        await self._col("messages").create_index(
            [("chat_id", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)], name="chat_created"
        )
        await self._col("messages").create_index([("status", ASCENDING)], name="status")
        await self._ensure_search_indexes()
        await self._ensure_accounts_indexes()
        await self._ensure_usage_indexes()
        await self._ensure_shares_indexes()
        await self._ensure_extras_indexes()
        await self._ensure_files_indexes()

    async def close(self) -> None:
        if self._index_task is not None:
            self._index_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._index_task
            self._index_task = None
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def ping(self) -> None:
        if self._client is None:
            raise RuntimeError("MongoStore used before start()")
        with pymongo.timeout(self.ping_timeout):
            await self._client.admin.command("ping")

    # -- locks ---------------------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        try:
            await self._col("locks").update_one(
                {"_id": name, "$or": [{"owner": owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": owner, "expires_at": now + ttl}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False  # the lock exists, held by someone else and not expired
        return True

    async def release_lock(self, name: str, owner: str) -> None:
        await self._col("locks").delete_one({"_id": name, "owner": owner})

    # -- teams and users -----------------------------------------------------------
    async def create_team(self, team: Team) -> None:
        try:
            await self._col("teams").insert_one(_doc(team))
        except DuplicateKeyError as exc:
            raise Conflict("team exists", code="team_exists") from exc

    async def get_team(self, team_id: str) -> Team | None:
        doc = await self._col("teams").find_one({"_id": team_id})
        return from_doc(Team, doc) if doc else None

    async def update_team(self, team_id: str, changes: Mapping[str, Any]) -> Team | None:
        updates = check_changes(Team, changes)
        doc = await self._col("teams").find_one_and_update(
            {"_id": team_id}, {"$set": updates}, return_document=ReturnDocument.AFTER
        )
        return from_doc(Team, doc) if doc else None

    async def create_user(self, user: User) -> None:
        try:
            await self._col("users").insert_one(_doc(user))
        except DuplicateKeyError as exc:
            raise Conflict("an account with this email already exists", code="email_taken") from exc

    async def get_user(self, user_id: str) -> User | None:
        doc = await self._col("users").find_one({"_id": user_id})
        return from_doc(User, doc) if doc else None

    async def get_user_by_email(self, email: str) -> User | None:
        doc = await self._col("users").find_one({"email": email})
        return from_doc(User, doc) if doc else None

    async def count_users(self) -> int:
        return await self._col("users").count_documents({})

    async def update_user(self, user_id: str, changes: Mapping[str, Any]) -> User | None:
        updates = check_changes(User, changes)
        if "email" in updates:
            # Checked first because FerretDB reports this unique-index violation of a
            # findAndModify as a generic error; the index still settles races on MongoDB.
            holder = await self._col("users").find_one({"email": updates["email"]}, {"_id": 1})
            if holder is not None and holder["_id"] != user_id:
                raise Conflict("an account with this email already exists", code="email_taken")
        try:
            doc = await self._col("users").find_one_and_update(
                {"_id": user_id}, {"$set": updates}, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError as exc:
            raise Conflict("an account with this email already exists", code="email_taken") from exc
        return from_doc(User, doc) if doc else None

    # -- chats ---------------------------------------------------------------------
    async def create_chat(self, chat: Chat) -> None:
        await self._col("chats").insert_one(_doc(chat))

    async def get_chat(self, user_id: str, chat_id: str) -> Chat | None:
        doc = await self._col("chats").find_one({"_id": chat_id, "user_id": user_id})
        return from_doc(Chat, doc) if doc else None

    async def list_chats(
        self,
        user_id: str,
        *,
        limit: int,
        after: ChatCursor | None = None,
        archived: bool | None = None,
        tag: str | None = None,
    ) -> list[Chat]:
        query: Doc = {"user_id": user_id}
        if archived is not None:
            query["archived"] = archived
        if tag is not None:
            query["tags"] = tag
        if after is not None:
            query["$or"] = [
                {"updated_at": {"$lt": after[0]}},
                {"updated_at": after[0], "_id": {"$lt": after[1]}},
            ]
        cursor = (
            self._col("chats")
            .find(query)
            .sort([("updated_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [from_doc(Chat, doc) async for doc in cursor]

    async def update_chat(self, user_id: str, chat_id: str, changes: Mapping[str, Any]) -> Chat | None:
        updates = mark_pending(check_changes(Chat, changes))
        doc = await self._col("chats").find_one_and_update(
            {"_id": chat_id, "user_id": user_id}, {"$set": updates}, return_document=ReturnDocument.AFTER
        )
        return from_doc(Chat, doc) if doc else None

    async def delete_chat(self, user_id: str, chat_id: str) -> bool:
        if await self._col("chats").find_one({"_id": chat_id, "user_id": user_id}, {"_id": 1}) is None:
            return False
        await self.record_chat_tombstone(user_id, chat_id)  # first: a crash cannot lose the deletion
        result = await self._col("chats").delete_one({"_id": chat_id, "user_id": user_id})
        if result.deleted_count == 0:
            return False
        await self._col("messages").delete_many({"chat_id": chat_id, "user_id": user_id})
        return True

    # -- messages ------------------------------------------------------------------
    async def create_message(self, message: Message) -> None:
        await self._col("messages").insert_one(_doc(message))

    async def get_message(self, user_id: str, message_id: str) -> Message | None:
        doc = await self._col("messages").find_one({"_id": message_id, "user_id": user_id})
        return from_doc(Message, doc) if doc else None

    async def list_messages(self, user_id: str, chat_id: str) -> list[Message]:
        cursor = (
            self._col("messages")
            .find({"chat_id": chat_id, "user_id": user_id})
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
        )
        return [from_doc(Message, doc) async for doc in cursor]

    async def update_message(
        self,
        user_id: str,
        message_id: str,
        changes: Mapping[str, Any],
        *,
        if_status: str | None = None,
    ) -> bool:
        updates = mark_pending(check_changes(Message, changes))
        query: dict[str, Any] = {"_id": message_id, "user_id": user_id}
        if if_status is not None:
            query["status"] = if_status
        result = await self._col("messages").update_one(query, {"$set": updates})
        return result.matched_count > 0

    async def list_messages_by_status(self, status: str, *, limit: int) -> list[Message]:
        cursor = self._col("messages").find({"status": status}).sort("created_at", ASCENDING).limit(limit)
        return [from_doc(Message, doc) async for doc in cursor]


def _reraise_cancellation(exc: BaseException) -> None:
    """PyMongo may turn the cancellation of an operation into one of its own errors; a
    cancelled task must still end, or close() would wait for it forever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from exc


def _first_line(exc: BaseException) -> str:
    """PyMongo's errors append a long topology description; the first part says enough."""
    return str(exc).split(", Timeout:")[0].splitlines()[0][:300] if str(exc) else type(exc).__name__
