"""Agents of my team: everyone reads them; admins create, replace, delete and set avatars."""

from __future__ import annotations

from typing import Any

from gust.handlers.account_schemas import AgentIn, AgentListOut, AgentOut
from gust.handlers.auth import SessionHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import ErrorOut
from gust.services.agents import AgentInput
from gust.services.avatars import MAX_BYTES

TAGS = ("agents",)
FORBIDDEN = {403: ErrorOut}


def agent_input(body: AgentIn) -> AgentInput:
    return AgentInput(
        name=body.name,
        description=body.description,
        model=body.model,
        system_prompt=body.system_prompt,
        webhook_url=body.webhook.url if body.webhook else None,
        webhook_token=body.webhook.token if body.webhook else None,
    )


class AgentsHandler(SessionHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op("Agents of my team", responses={200: AgentListOut}, tags=TAGS),
        "post": Op("Create an agent (admins); a webhook token is stored encrypted and never returned",
                   body=AgentIn, responses={201: AgentOut, **FORBIDDEN}, tags=TAGS),
    }

    async def get(self) -> None:
        agents = await self.accounts.agents.list(self.user)
        self.write_json({"items": [a.public() for a in agents]})

    async def post(self) -> None:
        body = self.json_body(AgentIn)
        agent = await self.accounts.agents.create(self.user, agent_input(body))
        self.write_json(agent.public(), 201)


class AgentHandler(SessionHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op("One agent of my team", responses={200: AgentOut}, tags=TAGS),
        "put": Op("Replace an agent (admins); a webhook without `token` keeps the stored one if the "
                  "URL is unchanged", body=AgentIn, responses={200: AgentOut, **FORBIDDEN}, tags=TAGS),
        "delete": Op("Delete an agent (admins)", responses={204: None, **FORBIDDEN}, tags=TAGS),
    }

    async def get(self, agent_id: str) -> None:
        self.write_json((await self.accounts.agents.get(self.user, agent_id)).public())

    async def put(self, agent_id: str) -> None:
        body = self.json_body(AgentIn)
        agent = await self.accounts.agents.replace(self.user, agent_id, agent_input(body))
        self.write_json(agent.public())

    async def delete(self, agent_id: str) -> None:
        await self.accounts.agents.delete(self.user, agent_id)
        self.set_status(204)
        self.finish()


BINARY: dict[str, Any] = {"type": "string", "format": "binary"}


class AgentAvatarHandler(SessionHandler):
    api_key_methods = frozenset({"GET"})
    max_body_bytes = MAX_BYTES
    api = {
        "get": Op("The agent's avatar (PNG)", responses={200: "image/png"}, tags=TAGS),
        "put": Op("Upload an avatar (admins): the raw PNG, JPEG or WebP bytes as the body, at most "
                  "1 MiB; it is re-encoded as PNG", responses={200: AgentOut, **FORBIDDEN}, tags=TAGS,
                  body_media={m: BINARY for m in ("image/png", "image/jpeg", "image/webp")}),
    }

    async def get(self, agent_id: str) -> None:
        avatar = await self.accounts.agents.avatar(self.user, agent_id)
        self.set_header("Content-Type", avatar.content_type)
        self.set_header("Cache-Control", "private, max-age=86400")
        self.set_header("Content-Security-Policy", "default-src 'none'; sandbox")
        self.finish(avatar.data)

    async def put(self, agent_id: str) -> None:
        agent = await self.accounts.agents.set_avatar(self.user, agent_id, self.body)
        self.write_json(agent.public())


default_handlers = [
    route("/api/agents", AgentsHandler),
    route("/api/agents/{agent_id}", AgentHandler),
    route("/api/agents/{agent_id}/avatar", AgentAvatarHandler),
]
