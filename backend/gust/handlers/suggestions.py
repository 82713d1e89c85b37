"""Suggested prompts: everyone signed in reads their team's list; team admins replace it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gust.handlers.auth import SessionHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import ErrorOut, Strict
from gust.services.suggestions import MAX_SUGGESTION_CHARS, MAX_SUGGESTIONS, SuggestionService


class SuggestionsOut(BaseModel):
    items: list[str]


class SuggestionsIn(Strict):
    items: list[str] = Field(max_length=MAX_SUGGESTIONS * 4)


class _SuggestionsBase(SessionHandler):
    @property
    def suggestion_service(self) -> SuggestionService:
        return self.services.suggestions


class SuggestionsHandler(_SuggestionsBase):
    api_key_methods = frozenset({"GET"})  # reading is harmless; replacing needs a session
    api = {"get": Op("Suggested prompts of my team (shown on an empty chat)",
                     responses={200: SuggestionsOut}, tags=("settings",))}

    async def get(self) -> None:
        items = await self.suggestion_service.for_user(self.user)
        self.write_json({"items": items})


class AdminSuggestionsHandler(_SuggestionsBase):
    api = {"put": Op(f"Replace my team's suggested prompts (admins; at most {MAX_SUGGESTIONS}, each "
                     f"at most {MAX_SUGGESTION_CHARS} characters; not with an API key)",
                     body=SuggestionsIn, responses={200: SuggestionsOut, 403: ErrorOut, 422: ErrorOut},
                     tags=("admin",))}

    async def put(self) -> None:
        body = self.json_body(SuggestionsIn)
        items = await self.suggestion_service.replace(self.user, body.items)
        self.write_json({"items": items})


default_handlers = [
    route("/api/settings/suggestions", SuggestionsHandler),
    route("/api/admin/suggestions", AdminSuggestionsHandler),
]
