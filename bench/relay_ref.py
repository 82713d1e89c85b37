"""Reference relay: the least a streaming relay must do, as a yardstick for Gust's overhead.

    python bench/relay_ref.py --port 9002 --upstream http://127.0.0.1:9001/v1

Tornado server; POST /chat/stream {"message"} starts a job that reads the upstream with
aiohttp and raw SSE parsing into a per-chat asyncio.Queue; the handler drains whatever
is waiting into one write and one flush. No auth, no storage, no event log.
"""

from __future__ import annotations

import argparse
import asyncio
import json

import aiohttp
import tornado.web
from tornado.iostream import StreamClosedError

DONE = object()


class StreamHandler(tornado.web.RequestHandler):
    def initialize(self, upstream: str, session_holder: list[aiohttp.ClientSession]) -> None:
        self.upstream = upstream
        self.session_holder = session_holder

    async def job(self, queue: asyncio.Queue[object], message: str) -> None:
        if not self.session_holder:
            self.session_holder.append(aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)))
        body = {"model": "bench", "stream": True, "messages": [{"role": "user", "content": message}]}
        try:
            async with self.session_holder[0].post(self.upstream + "/chat/completions", json=body) as resp:
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

    async def post(self) -> None:
        message = json.loads(self.request.body)["message"]
        queue: asyncio.Queue[object] = asyncio.Queue()
        task = asyncio.ensure_future(self.job(queue, message))
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
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
                        out.append('event: done\ndata: {"type":"done"}\n\n')
                        break
                    seq += 1
                    data = json.dumps({"type": "delta", "delta": item})
                    out.append(f"id: {seq}\nevent: delta\ndata: {data}\n\n")
                self.write("".join(out))
                await self.flush()
        except StreamClosedError:
            pass
        await task


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    holder: list[aiohttp.ClientSession] = []
    app = tornado.web.Application(
        [(r"/chat/stream", StreamHandler, {"upstream": args.upstream, "session_holder": holder})]
    )
    app.listen(args.port, "127.0.0.1", backlog=4096)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
