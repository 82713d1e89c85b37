"""`GET /api/events`: the signed-in user's notifications as server-sent events.

Today one kind: `title` `{chat_id, title}` when a chat gets its (generated) title, after
its answer's own stream has ended. The stream stays open (a `: ping` comment every
PING_SECONDS) until the client leaves or the server shuts down; a client that reconnects
with Last-Event-ID gets what it missed while the notifications are kept (a few minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from tornado.iostream import StreamClosedError

from gust.domain.events import PING_SSE, TitleEventOut
from gust.handlers.base import APIHandler
from gust.handlers.routing import Media, Op, route
from gust.services.user_events import UserEvents

PING_SECONDS = 15.0


USER_EVENTS = Media("The user's notifications, as server-sent events", {"text/event-stream": TitleEventOut})


class UserEventsHandler(APIHandler):
    api = {"get": Op("Live notifications of the signed-in user (SSE): `title` when a chat is titled",
                     responses={200: USER_EVENTS}, tags=("streaming",))}

    _task: asyncio.Future[None] | None = None

    @property
    def feed(self) -> UserEvents:
        feed = self.services.user_events
        if feed is None:
            raise RuntimeError("user events not configured")
        return feed

    async def get(self) -> None:
        feed, user_id = self.feed, self.user.id
        last = self.request.headers.get("Last-Event-ID", "")
        after = int(last) if last.isdigit() and len(last) < 20 else feed.now()
        self.set_status(200)
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        self.write(b": open\n\n")
        self._task = asyncio.ensure_future(self._relay(feed, user_id, after))
        with contextlib.suppress(asyncio.CancelledError, StreamClosedError):
            await self._task
        if not self.request.connection.stream.closed():  # type: ignore[union-attr]
            self.finish()

    async def _relay(self, feed: UserEvents, user_id: str, after: int) -> None:
        await self.flush()
        while not feed.closing.is_set():
            events = await feed.read(user_id, after, PING_SECONDS)
            if not events:
                self.write(PING_SSE)
            for seq, event in events:
                if event.get("type") == "open":
                    continue  # the log's opening marker (services/user_events.py)
                data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
                self.write(f"id: {seq}\nevent: {event.get('type', 'message')}\ndata: {data}\n\n".encode())
                after = seq
            await self.flush()

    def on_connection_close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        super().on_connection_close()


default_handlers = [route("/api/events", UserEventsHandler)]
