"""Share links (see services/shares.py): the owner creates, reads and revokes; anyone reads."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from gust.handlers.base import APIHandler
from gust.handlers.routing import Op, route
from gust.ports.shares_store import Share
from gust.services.shares import ShareService


class SharedMessageOut(BaseModel):
    """A message as a share shows it."""

    id: str
    parent_id: str | None
    role: Literal["user", "assistant", "system"]
    content: str
    reasoning: str | None
    status: str
    model: str | None
    sources: list[dict[str, Any]] | None
    created_at: str | None


class ShareOut(BaseModel):
    """A read-only snapshot of a chat's branch, as it was when shared."""

    id: str
    url: str
    title: str
    model: str | None
    created_at: str | None
    messages: list[SharedMessageOut]


def share_json(share: Share) -> dict[str, Any]:
    return {**share.public(), "url": f"/s/{share.id}"}


class _SharesHandler(APIHandler):
    @property
    def shares(self) -> ShareService:
        return self.services.shares


class ChatShareHandler(_SharesHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op(
            "The chat's live share link, if any", responses={200: ShareOut, 404: None}, tags=("shares",)
        ),
        "post": Op(
            "Share the chat's current branch as a read-only snapshot (replaces an earlier link)",
            responses={201: ShareOut, 404: None, 413: None},
            tags=("shares",),
        ),
        "delete": Op("Revoke the chat's share link", responses={204: None, 404: None}, tags=("shares",)),
    }

    async def get(self, chat_id: str) -> None:
        self.write_json(share_json(await self.shares.current(self.user, chat_id)))

    async def post(self, chat_id: str) -> None:
        self.write_json(share_json(await self.shares.share(self.user, chat_id)), status=201)

    async def delete(self, chat_id: str) -> None:
        await self.shares.revoke(self.user, chat_id)
        self.set_status(204)
        self.finish()


class PublicShareHandler(_SharesHandler):
    api_key_methods = frozenset({"GET"})
    auth_required = False
    api = {
        "get": Op(
            "A shared snapshot, for anyone with the link (404 when unknown or revoked)",
            responses={200: ShareOut, 404: None},
            tags=("shares",),
        )
    }

    async def get(self, share_id: str) -> None:
        self.set_header("X-Robots-Tag", "noindex")
        self.write_json(share_json(await self.shares.read(share_id)))


default_handlers = [
    route("/api/chats/{chat_id}/share", ChatShareHandler),
    route("/api/shares/{share_id}", PublicShareHandler),
]
