"""Search my chats and messages."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gust.domain.models import iso
from gust.handlers.base import APIHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import Strict
from gust.ports.search import MAX_QUERY_CHARS
from gust.services.search import MAX_LIMIT, SearchService

Role = Literal["user", "assistant", "system"]


class SearchQuery(Strict):
    q: str = Field(max_length=MAX_QUERY_CHARS, description="Words to find; the last one may be a prefix")
    limit: int = Field(20, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=1000)
    chat_id: str | None = Field(None, max_length=64, description="Only this chat")
    role: Role | None = Field(None, description="Only messages of this role")


class SearchHitOut(BaseModel):
    """One chat title or message that matched."""

    chat_id: str
    chat_title: str
    message_id: str | None = Field(description="None when the chat's title matched")
    role: Role | None
    snippet: str = Field(description="HTML: escaped text, matches wrapped in <mark>")
    created_at: str


class SearchOut(BaseModel):
    """Search results, best first."""

    hits: list[SearchHitOut]
    total_estimate: int
    took_ms: float


class SearchHandler(APIHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op("Search my chats and messages (titles rank above message text)", query=SearchQuery,
                  responses={200: SearchOut}, tags=("search",)),
    }

    @property
    def search(self) -> SearchService:
        return self.services.search

    async def get(self) -> None:
        query = self.query_model(SearchQuery)
        results = await self.search.search(
            self.user, query.q, limit=query.limit, offset=query.offset, chat_id=query.chat_id, role=query.role
        )
        hits = [
            {
                "chat_id": found.hit.chat_id,
                "chat_title": found.chat_title,
                "message_id": found.hit.message_id,
                "role": found.hit.role,
                "snippet": found.hit.snippet,
                "created_at": iso(found.hit.created_at),
            }
            for found in results.hits
        ]
        self.write_json({"hits": hits, "total_estimate": results.total_estimate, "took_ms": results.took_ms})


default_handlers = [route("/api/search", SearchHandler)]
