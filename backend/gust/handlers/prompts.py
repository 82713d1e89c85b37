"""The prompt library: personal and team prompts, versioned."""

from __future__ import annotations

from typing import Any

from gust.handlers.base import APIHandler
from gust.handlers.extras_schemas import PromptCreateIn, PromptListOut, PromptOut, PromptPatchIn
from gust.handlers.routing import Op, route
from gust.handlers.schemas import ErrorOut
from gust.ports.extras_store import Prompt
from gust.services.prompts import PromptService, variables

TAGS = ("prompts",)
ERRORS = {403: ErrorOut, 404: ErrorOut}


def prompt_json(prompt: Prompt) -> dict[str, Any]:
    return {**prompt.public(), "variables": variables(prompt.body)}


class _PromptsBase(APIHandler):
    @property
    def prompts(self) -> PromptService:
        return self.services.prompts


class PromptsHandler(_PromptsBase):
    api = {
        "get": Op("My prompts and my team's", responses={200: PromptListOut}, tags=TAGS),
        "post": Op("Save a prompt (a team prompt: team admins only)", body=PromptCreateIn,
                   responses={201: PromptOut, 403: ErrorOut, 409: ErrorOut}, tags=TAGS),
    }

    async def get(self) -> None:
        prompts = await self.prompts.list_visible(self.user)
        self.write_json({"items": [prompt_json(p) for p in prompts]})

    async def post(self) -> None:
        body = self.json_body(PromptCreateIn)
        prompt = await self.prompts.create(
            self.user, name=body.name, command=body.command, body=body.body, team=body.team
        )
        self.write_json(prompt_json(prompt), 201)


class PromptHandler(_PromptsBase):
    api = {
        "get": Op("A prompt (its newest version)", responses={200: PromptOut, **ERRORS}, tags=TAGS),
        "patch": Op("Change a prompt: stores a new version", body=PromptPatchIn,
                    responses={200: PromptOut, 409: ErrorOut, **ERRORS}, tags=TAGS),
        "delete": Op("Delete a prompt and its versions", responses={204: None, **ERRORS}, tags=TAGS),
    }

    async def get(self, prompt_id: str) -> None:
        self.write_json(prompt_json(await self.prompts.get(self.user, prompt_id)))

    async def patch(self, prompt_id: str) -> None:
        body = self.json_body(PromptPatchIn)
        prompt = await self.prompts.update(
            self.user, prompt_id, name=body.name, command=body.command, body=body.body
        )
        self.write_json(prompt_json(prompt))

    async def delete(self, prompt_id: str) -> None:
        await self.prompts.delete(self.user, prompt_id)
        self.set_status(204)
        self.finish()


class PromptVersionsHandler(_PromptsBase):
    api = {
        "get": Op("Every version of a prompt, newest first", responses={200: PromptListOut, **ERRORS},
                  tags=TAGS),
    }

    async def get(self, prompt_id: str) -> None:
        versions = await self.prompts.versions(self.user, prompt_id)
        self.write_json({"items": [prompt_json(p) for p in versions]})


default_handlers = [
    route("/api/prompts", PromptsHandler),
    route("/api/prompts/{prompt_id}", PromptHandler),
    route("/api/prompts/{prompt_id}/versions", PromptVersionsHandler),
]
