"""One message of a chat: delete it (with its subtree), rate it, continue it."""

from __future__ import annotations

from typing import Any

from gust.handlers.base import APIHandler
from gust.handlers.extras_schemas import ContinuedOut, FeedbackCountsOut, FeedbackIn
from gust.handlers.routing import Op, route
from gust.handlers.schemas import ErrorOut, MessageOut
from gust.services.continuation import continue_answer
from gust.services.messages import MessageService

NOT_FOUND = {404: ErrorOut}


class _MessagesBase(APIHandler):
    @property
    def messages(self) -> MessageService:
        service = self.services.messages
        if service is None:
            raise RuntimeError("message service not configured")
        return service


class MessageHandler(_MessagesBase):
    api = {
        "delete": Op("Delete a message and every message below it (siblings stay); a live answer "
                     "among them is stopped first", responses={204: None, **NOT_FOUND}, tags=("chats",)),
    }

    async def delete(self, chat_id: str, message_id: str) -> None:
        await self.messages.delete(self.user, chat_id, message_id)
        self.set_status(204)
        self.finish()


class FeedbackHandler(_MessagesBase):
    api = {
        "put": Op("Rate an answer: 1 or -1 with an optional comment; 0 clears the rating",
                  body=FeedbackIn, responses={200: MessageOut, **NOT_FOUND}, tags=("chats",)),
    }

    async def put(self, chat_id: str, message_id: str) -> None:
        body = self.json_body(FeedbackIn)
        message = await self.messages.set_feedback(self.user, chat_id, message_id, body.rating, body.comment)
        self.write_json(message.public())


class ContinueHandler(_MessagesBase):
    api = {
        "post": Op("Continue a cut or stopped answer into the same message; follow it with "
                   "GET .../events (the deltas carry only the new text)",
                   responses={202: ContinuedOut, 409: ErrorOut, **NOT_FOUND, 503: None},
                   tags=("streaming",)),
    }

    async def post(self, chat_id: str, message_id: str) -> None:
        generation = self.services.generation
        if generation is None:
            raise RuntimeError("generation service not configured")
        started = await continue_answer(generation, self.user, chat_id, message_id)
        message_id = started.assistant_message.id
        # generation_id: the deprecated alias of message_id (one release)
        self.write_json({"message_id": message_id, "generation_id": message_id}, 202)


class FeedbackCountsHandler(_MessagesBase):
    api = {
        "get": Op("Rated answers of my team per model (admins only)",
                  responses={200: FeedbackCountsOut, 403: ErrorOut}, tags=("admin",)),
    }

    async def get(self) -> None:
        counts = await self.messages.feedback_counts(self.user)
        items: list[dict[str, Any]] = [{"model": m, **c} for m, c in sorted(counts.items())]
        self.write_json({"items": items})


default_handlers = [
    route("/api/chats/{chat_id}/messages/{message_id}", MessageHandler),
    route("/api/chats/{chat_id}/messages/{message_id}/feedback", FeedbackHandler),
    route("/api/chats/{chat_id}/messages/{message_id}/continue", ContinueHandler),
    route("/api/admin/feedback", FeedbackCountsHandler),
]
