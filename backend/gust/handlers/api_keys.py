"""Personal API keys: create (the key is shown once), list, delete."""

from __future__ import annotations

from gust.handlers.account_schemas import ApiKeyCreatedOut, ApiKeyCreateIn, ApiKeyListOut
from gust.handlers.auth import SessionHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import ErrorOut


class ApiKeysHandler(SessionHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op("My API keys (never the keys themselves)", responses={200: ApiKeyListOut},
                  tags=("api-keys",)),
        "post": Op("Create an API key; use it as `Authorization: Bearer gust_...`. The key is in "
                   "this response only", body=ApiKeyCreateIn,
                   responses={201: ApiKeyCreatedOut, 403: ErrorOut, 409: ErrorOut}, tags=("api-keys",)),
    }

    async def get(self) -> None:
        keys = await self.accounts.api_keys.list(self.user)
        self.write_json({"items": [k.public() for k in keys]})

    async def post(self) -> None:
        body = self.json_body(ApiKeyCreateIn)
        key, secret = await self.accounts.api_keys.create(self.user, body.name)
        self.write_json({**key.public(), "key": secret}, 201)


class ApiKeyHandler(SessionHandler):
    api = {"delete": Op("Delete one of my API keys", responses={204: None}, tags=("api-keys",))}

    async def delete(self, key_id: str) -> None:
        await self.accounts.api_keys.delete(self.user, key_id)
        self.set_status(204)
        self.finish()


default_handlers = [
    route("/api/auth/api-keys", ApiKeysHandler),
    route("/api/auth/api-keys/{key_id}", ApiKeyHandler),
]
