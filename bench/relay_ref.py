"""Reference relay: the least a streaming relay must do, as a yardstick for Gust's overhead.

    python bench/relay_ref.py --port 9002 --upstream http://127.0.0.1:9001/v1

Tornado server with the three shapes of Gust's streaming paths, each a job that reads the
upstream with aiohttp and raw SSE parsing into a per-chat asyncio.Queue, and a handler that
drains whatever is waiting into one write and one flush:

- POST /chat/stream {"message"}: the answer as SSE `delta` events, then `done`;
- POST /v1/chat/completions {"messages", "stream": true}: OpenAI chunks, then `[DONE]`;
- POST /api/chats (a chat id), POST /api/chats/{id}/messages (202, starts the job),
  GET /api/chats/{id}/events (follows it as SSE).

No auth, no storage, no event log. Every stream turns Nagle's algorithm off (TCP_NODELAY),
as a relay must: with it on, a small write after an unacknowledged one waits for the
client's delayed ACK (~40 ms) on a reused keep-alive connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp
import tornado.web
from tornado.http1connection import HTTP1Connection
from tornado.iostream import StreamClosedError

DONE = object()


class Relay:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.session: aiohttp.ClientSession | None = None
        self.jobs: dict[str, tuple[asyncio.Queue[object], asyncio.Future[None]]] = {}

    def start(self, message: str) -> tuple[asyncio.Queue[object], asyncio.Future[None]]:
        queue: asyncio.Queue[object] = asyncio.Queue()
        return queue, asyncio.ensure_future(self.job(queue, message))

    async def job(self, queue: asyncio.Queue[object], message: str) -> None:
        if self.session is None:
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": message}]}
        try:
            async with self.session.post(self.upstream + "/chat/completions", json=body) as resp:
                async for raw in resp.content:
                    line = raw.strip()
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        break
                    for choice in json.loads(data).get("choices") or ():
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            queue.put_nowait(text)
        finally:
            queue.put_nowait(DONE)


class StreamingHandler(tornado.web.RequestHandler):
    def initialize(self, relay: Relay) -> None:
        self.relay = relay

    def begin(self) -> None:
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        connection = self.request.connection
        assert isinstance(connection, HTTP1Connection)
        connection.stream.set_nodelay(True)

    def frame(self, item: object, seq: int) -> str:
        raise NotImplementedError

    def closing(self) -> str:
        raise NotImplementedError

    async def relay_queue(self, queue: asyncio.Queue[object], task: asyncio.Future[None]) -> None:
        seq = 0
        finished = False
        try:
            while not finished:
                items = [await queue.get()]
                while not queue.empty():
                    items.append(queue.get_nowait())
                out = []
                for item in items:
                    if item is DONE:
                        finished = True
                        out.append(self.closing())
                        break
                    seq += 1
                    out.append(self.frame(item, seq))
                self.write("".join(out))
                await self.flush()
        except StreamClosedError:
            pass
        await task


class GustShape(StreamingHandler):
    def frame(self, item: object, seq: int) -> str:
        return f"id: {seq}\nevent: delta\ndata: {json.dumps({'type': 'delta', 'delta': item})}\n\n"

    def closing(self) -> str:
        return 'event: done\ndata: {"type":"done"}\n\n'


class ChatStreamHandler(GustShape):
    async def post(self) -> None:
        queue, task = self.relay.start(json.loads(self.request.body)["message"])
        self.begin()
        await self.relay_queue(queue, task)


class ChatsHandler(tornado.web.RequestHandler):
    def post(self) -> None:
        self.set_status(201)
        self.finish({"id": uuid.uuid4().hex})


class MessagesHandler(tornado.web.RequestHandler):
    def initialize(self, relay: Relay) -> None:
        self.relay = relay

    def post(self, chat_id: str) -> None:
        self.relay.jobs[chat_id] = self.relay.start(json.loads(self.request.body)["message"])
        self.set_status(202)
        self.finish({"chat_id": chat_id})


class EventsHandler(GustShape):
    async def get(self, chat_id: str) -> None:
        queue, task = self.relay.jobs.pop(chat_id)
        self.begin()
        await self.relay_queue(queue, task)


class CompletionsHandler(StreamingHandler):
    async def post(self) -> None:
        body = json.loads(self.request.body)
        queue, task = self.relay.start(body["messages"][-1]["content"])
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.begin()
        self.write(self.chunk({"role": "assistant", "content": ""}))
        await self.relay_queue(queue, task)

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> str:
        payload = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                   "model": "bench", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(payload)}\n\n"

    def frame(self, item: object, seq: int) -> str:
        return self.chunk({"content": item})

    def closing(self) -> str:
        return self.chunk({}, "stop") + "data: [DONE]\n\n"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    relay = Relay(args.upstream)
    app = tornado.web.Application(
        [
            (r"/chat/stream", ChatStreamHandler, {"relay": relay}),
            (r"/v1/chat/completions", CompletionsHandler, {"relay": relay}),
            (r"/api/chats", ChatsHandler),
            (r"/api/chats/([^/]+)/messages", MessagesHandler, {"relay": relay}),
            (r"/api/chats/([^/]+)/events", EventsHandler, {"relay": relay}),
        ]
    )
    app.listen(args.port, "127.0.0.1", backlog=4096)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
