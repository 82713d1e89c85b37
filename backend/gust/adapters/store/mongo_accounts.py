"""Accounts and security in the MongoDB store: refresh tokens, API keys, invites, agents, errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from gust.adapters.store.account_records import check_agent_changes, dump, load
from gust.adapters.store.records import from_doc
from gust.domain.accounts import Agent, AgentAvatar, ApiKey, ErrorLogEntry, Invite, RefreshToken
from gust.domain.models import User

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

Doc = dict[str, Any]


def _doc(record: Any) -> Doc:
    data = dump(record)
    data["_id"] = data.pop("id")
    return data


class MongoAccountsMixin:
    """Mixed into MongoStore (uses its `_col`)."""

    if TYPE_CHECKING:

        def _col(self, name: str) -> AsyncCollection[Doc]: ...

    async def _ensure_accounts_indexes(self) -> None:
        await self._col("users").create_index(
            [("identities.provider", ASCENDING), ("identities.subject", ASCENDING)], name="identities"
        )
        tokens = self._col("refresh_tokens")
        await tokens.create_index([("token_hash", ASCENDING)], unique=True, name="token_hash_unique")
        await tokens.create_index([("family_id", ASCENDING)], name="family")
        await tokens.create_index([("user_id", ASCENDING)], name="user")
        keys = self._col("api_keys")
        await keys.create_index([("key_hash", ASCENDING)], unique=True, name="key_hash_unique")
        await keys.create_index([("user_id", ASCENDING)], name="user")
        invites = self._col("invites")
        await invites.create_index([("token_hash", ASCENDING)], unique=True, name="token_hash_unique")
        await invites.create_index([("team_id", ASCENDING), ("created_at", DESCENDING)], name="team")
        await self._col("agents").create_index([("team_id", ASCENDING), ("name", ASCENDING)], name="team")
        await self._col("error_logs").create_index([("created_at", DESCENDING)], name="created")
        await self._col("error_logs").create_index(
            [("team_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)], name="team"
        )

    # -- users -----------------------------------------------------------------------
    async def list_team_users(self, team_id: str, *, limit: int) -> list[User]:
        cursor = (
            self._col("users")
            .find({"team_id": team_id})
            .sort([("created_at", ASCENDING), ("_id", ASCENDING)])
            .limit(limit)
        )
        return [from_doc(User, doc) async for doc in cursor]

    async def get_user_by_identity(self, provider: str, subject: str) -> User | None:
        # Not $elemMatch (FerretDB 1.x lacks it): match both fields anywhere in the array,
        # then require one identity to hold both.
        cursor = self._col("users").find({"identities.provider": provider, "identities.subject": subject})
        async for doc in cursor:
            user = from_doc(User, doc)
            if any(i.get("provider") == provider and i.get("subject") == subject for i in user.identities):
                return user
        return None

    async def count_admins(self, team_id: str) -> int:
        return await self._col("users").count_documents(
            {"team_id": team_id, "role": "admin", "disabled": False}
        )

    # -- refresh tokens ----------------------------------------------------------------
    async def create_refresh_token(self, token: RefreshToken) -> None:
        await self._col("refresh_tokens").insert_one(_doc(token))

    async def get_refresh_token_by_hash(self, token_hash: str) -> RefreshToken | None:
        doc = await self._col("refresh_tokens").find_one({"token_hash": token_hash})
        return load(RefreshToken, doc) if doc else None

    async def _claim(self, key: str, at: float) -> bool:
        """True for the one caller that inserts `key`. An insert on the unique _id is atomic on
        FerretDB too, where findAndModify is a find and an update that concurrent calls interleave."""
        try:
            await self._col("single_use_claims").insert_one({"_id": key, "at": at})
        except DuplicateKeyError:
            return False
        return True

    async def use_refresh_token(self, token_hash: str, at: float) -> tuple[RefreshToken | None, bool]:
        tokens = self._col("refresh_tokens")
        doc = await tokens.find_one({"token_hash": token_hash})
        if doc is None:
            return None, False
        token = load(RefreshToken, doc)
        if token.used_at is not None or token.revoked_at is not None:
            return token, False
        if not await self._claim(f"refresh:{token.id}", at):
            latest = await tokens.find_one({"_id": token.id})
            return (load(RefreshToken, latest) if latest else token), False
        await tokens.update_one({"_id": token.id}, {"$set": {"used_at": at}})
        token.used_at = at
        return token, True

    async def revoke_refresh_family(self, family_id: str, at: float) -> int:
        result = await self._col("refresh_tokens").update_many(
            {"family_id": family_id, "revoked_at": None}, {"$set": {"revoked_at": at}}
        )
        return result.modified_count

    async def revoke_user_refresh_tokens(self, user_id: str, at: float) -> int:
        result = await self._col("refresh_tokens").update_many(
            {"user_id": user_id, "revoked_at": None}, {"$set": {"revoked_at": at}}
        )
        return result.modified_count

    # -- API keys ----------------------------------------------------------------------
    async def create_api_key(self, key: ApiKey) -> None:
        await self._col("api_keys").insert_one(_doc(key))

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        cursor = self._col("api_keys").find({"user_id": user_id}).sort("_id", ASCENDING)
        return [load(ApiKey, doc) async for doc in cursor]

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None:
        doc = await self._col("api_keys").find_one({"key_hash": key_hash})
        return load(ApiKey, doc) if doc else None

    async def delete_api_key(self, user_id: str, key_id: str) -> bool:
        result = await self._col("api_keys").delete_one({"_id": key_id, "user_id": user_id})
        return result.deleted_count > 0

    async def touch_api_key(self, key_id: str, at: float) -> None:
        await self._col("api_keys").update_one({"_id": key_id}, {"$set": {"last_used_at": at}})

    # -- invites -----------------------------------------------------------------------
    async def create_invite(self, invite: Invite) -> None:
        await self._col("invites").insert_one(_doc(invite))

    async def list_invites(self, team_id: str) -> list[Invite]:
        cursor = (
            self._col("invites")
            .find({"team_id": team_id})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        )
        return [load(Invite, doc) async for doc in cursor]

    async def get_invite_by_hash(self, token_hash: str) -> Invite | None:
        doc = await self._col("invites").find_one({"token_hash": token_hash})
        return load(Invite, doc) if doc else None

    async def use_invite(self, token_hash: str, user_id: str, at: float) -> Invite | None:
        invites = self._col("invites")
        doc = await invites.find_one({"token_hash": token_hash, "used_at": None, "expires_at": {"$gt": at}})
        if doc is None or not await self._claim(f"invite:{doc['_id']}", at):
            return None
        await invites.update_one({"_id": doc["_id"]}, {"$set": {"used_at": at, "used_by": user_id}})
        return load(Invite, {**doc, "used_at": at, "used_by": user_id})

    async def delete_invite(self, team_id: str, invite_id: str) -> bool:
        result = await self._col("invites").delete_one({"_id": invite_id, "team_id": team_id})
        return result.deleted_count > 0

    # -- agents ------------------------------------------------------------------------
    async def create_agent(self, agent: Agent) -> None:
        await self._col("agents").insert_one(_doc(agent))

    async def get_agent(self, team_id: str, agent_id: str) -> Agent | None:
        doc = await self._col("agents").find_one({"_id": agent_id, "team_id": team_id})
        return load(Agent, doc) if doc else None

    async def list_agents(self, team_id: str) -> list[Agent]:
        order = [("name", ASCENDING), ("_id", ASCENDING)]
        cursor = self._col("agents").find({"team_id": team_id}).sort(order)
        return [load(Agent, doc) async for doc in cursor]

    async def update_agent(self, team_id: str, agent_id: str, changes: Mapping[str, Any]) -> Agent | None:
        updates = check_agent_changes(changes)
        doc = await self._col("agents").find_one_and_update(
            {"_id": agent_id, "team_id": team_id}, {"$set": updates}, return_document=ReturnDocument.AFTER
        )
        return load(Agent, doc) if doc else None

    async def delete_agent(self, team_id: str, agent_id: str) -> bool:
        result = await self._col("agents").delete_one({"_id": agent_id, "team_id": team_id})
        if result.deleted_count == 0:
            return False
        await self._col("agent_avatars").delete_one({"_id": agent_id, "team_id": team_id})
        return True

    async def put_agent_avatar(self, avatar: AgentAvatar) -> None:
        await self._col("agent_avatars").replace_one(
            {"_id": avatar.agent_id},
            {"team_id": avatar.team_id, "content_type": avatar.content_type, "data": avatar.data},
            upsert=True,
        )

    async def get_agent_avatar(self, team_id: str, agent_id: str) -> AgentAvatar | None:
        doc = await self._col("agent_avatars").find_one({"_id": agent_id, "team_id": team_id})
        if doc is None:
            return None
        return AgentAvatar(
            agent_id=agent_id, team_id=team_id, content_type=doc["content_type"], data=bytes(doc["data"])
        )

    # -- error log ---------------------------------------------------------------------
    async def add_error(self, entry: ErrorLogEntry, *, keep: int) -> None:
        errors = self._col("error_logs")
        await errors.insert_one(_doc(entry))
        old = (
            errors.find({"team_id": entry.team_id}, {"_id": 1})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(keep)
        )
        stale = [doc["_id"] async for doc in old]
        if stale:
            await errors.delete_many({"_id": {"$in": stale}})

    async def list_errors(self, *, team_id: str | None, limit: int) -> list[ErrorLogEntry]:
        query: Doc = {}
        if team_id is not None:
            query = {"team_id": team_id}
        cursor = (
            self._col("error_logs")
            .find(query)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .limit(limit)
        )
        return [load(ErrorLogEntry, doc) async for doc in cursor]
