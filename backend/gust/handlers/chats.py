"""Chats CRUD and their messages."""

from __future__ import annotations

from typing import Any

from gust.handlers.base import APIHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import (
    ChatCreateIn,
    ChatDetailOut,
    ChatGetQuery,
    ChatListOut,
    ChatListQuery,
    ChatOut,
    ChatPatchIn,
)
from gust.services.chats import ChatView


def view_json(view: ChatView) -> dict[str, Any]:
    messages = [{**m.public(), "sibling_ids": view.siblings[m.id]} for m in view.branch]
    return {**view.chat.public(), "messages": messages}


class ChatsHandler(APIHandler):
    api_key_methods = frozenset({"GET", "POST"})
    api = {
        "get": Op("List my chats, newest first", query=ChatListQuery,
                  responses={200: ChatListOut}, tags=("chats",)),
        "post": Op("Create a chat", body=ChatCreateIn, responses={201: ChatOut}, tags=("chats",)),
    }

    async def get(self) -> None:
        query = self.query_model(ChatListQuery)
        chats, next_cursor = await self.chats.list_chats(
            self.user, limit=query.limit, cursor=query.cursor, archived=query.archived, tag=query.tag
        )
        self.write_json({"items": [c.public() for c in chats], "next_cursor": next_cursor})

    async def post(self) -> None:
        body = self.json_body(ChatCreateIn)
        chat = await self.chats.create_chat(
            self.user, title=body.title, model=body.model, system_prompt=body.system_prompt,
            agent_id=body.agent_id,
        )
        self.write_json(chat.public(), 201)


class ChatHandler(APIHandler):
    api_key_methods = frozenset({"GET", "PATCH", "DELETE"})
    api = {
        "get": Op("A chat with its current branch (select another with ?leaf=<message id>)",
                  query=ChatGetQuery, responses={200: ChatDetailOut}, tags=("chats",)),
        "patch": Op("Rename, pin, archive or change a chat", body=ChatPatchIn,
                    responses={200: ChatOut}, tags=("chats",)),
        "delete": Op("Delete a chat and its messages", responses={204: None}, tags=("chats",)),
    }

    async def get(self, chat_id: str) -> None:
        query = self.query_model(ChatGetQuery)
        view = await self.chats.view(self.user, chat_id, query.leaf)
        self.write_json(view_json(view))

    async def patch(self, chat_id: str) -> None:
        body = self.json_body(ChatPatchIn)
        chat = await self.chats.update_chat(self.user, chat_id, body.model_dump(exclude_unset=True))
        self.write_json(chat.public())

    async def delete(self, chat_id: str) -> None:
        await self.chats.delete_chat(self.user, chat_id)
        self.set_status(204)
        self.finish()


default_handlers = [
    route("/api/chats", ChatsHandler),
    route("/api/chats/{chat_id}", ChatHandler),
]
