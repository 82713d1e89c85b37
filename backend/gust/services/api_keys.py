"""Personal API keys: `gust_...` strings shown once, stored as SHA-256, used as Bearer tokens."""

from __future__ import annotations

import logging

from gust.domain.accounts import ApiKey
from gust.domain.errors import Conflict, NotFound
from gust.domain.ids import new_id, new_token, now
from gust.domain.models import User
from gust.ports.accounts_store import AccountsStore
from gust.services.auth import API_KEY_PREFIX
from gust.services.tokens import token_hash

log = logging.getLogger(__name__)

MAX_KEYS_PER_USER = 50
PREFIX_SHOWN = len(API_KEY_PREFIX) + 6


class ApiKeyService:
    def __init__(self, store: AccountsStore) -> None:
        self.store = store

    async def create(self, user: User, name: str) -> tuple[ApiKey, str]:
        """A new key and its secret value, which is never available again."""
        if len(await self.store.list_api_keys(user.id)) >= MAX_KEYS_PER_USER:
            raise Conflict(f"a user may have at most {MAX_KEYS_PER_USER} API keys", code="too_many_keys")
        secret = API_KEY_PREFIX + new_token(32)
        key = ApiKey(
            id=new_id(),
            user_id=user.id,
            name=" ".join(name.split())[:100] or "API key",
            key_hash=token_hash(secret),
            prefix=secret[:PREFIX_SHOWN],
            created_at=now(),
        )
        await self.store.create_api_key(key)
        log.info("user %s created API key %s", user.id, key.id)
        return key, secret

    async def list(self, user: User) -> list[ApiKey]:
        return await self.store.list_api_keys(user.id)

    async def delete(self, user: User, key_id: str) -> None:
        if not await self.store.delete_api_key(user.id, key_id):
            raise NotFound("API key not found")
        log.info("user %s deleted API key %s", user.id, key_id)
