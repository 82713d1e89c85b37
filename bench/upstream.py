"""Benchmark upstream: OpenAI-style streaming at a fixed token rate; every token carries its send time.

    python bench/upstream.py --port 9001 --tokens 200 --rate 50 --ttft 0.1 --role-lead 0.02

With --role-lead, the stream opens with a role chunk (`{"role": "assistant", "content": ""}`)
that many seconds before the first content delta, as OpenAI's API and most others do; the
first delta still comes --ttft seconds after the request.

Each content delta is "<send time in epoch seconds> " so a client can measure the
delay of every chunk end to end, through any relay, by reading the text it receives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from aiohttp import web


def make_app(tokens: int, rate: float, ttft: float, role_lead: float = 0.0) -> web.Application:
    interval = 1.0 / rate

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            # Short non-streaming completions (Gust asks for a chat title this way).
            return web.json_response(
                {
                    "id": "bench",
                    "object": "chat.completion",
                    "model": body.get("model", "bench"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "Bench title"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 30, "completion_tokens": 2},
                }
            )
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        model = body.get("model", "bench")
        try:
            if role_lead > 0:
                await asyncio.sleep(max(0.0, ttft - role_lead))
                delta = {"role": "assistant", "content": ""}
                role = {"choices": [{"index": 0, "delta": delta}], "model": model}
                await resp.write(b"data: " + json.dumps(role).encode() + b"\n\n")
                await asyncio.sleep(min(role_lead, ttft))
            else:
                await asyncio.sleep(ttft)
            start = time.monotonic()
            for i in range(tokens):
                # A fixed schedule, not sleep(interval) after each write: the rate does not drift under load.
                delay = start + i * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                chunk = {
                    "choices": [{"index": 0, "delta": {"content": f"{time.time():.6f} "}}],
                    "model": model,
                }
                await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "model": model}
            usage = {"choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": tokens}}
            await resp.write(
                b"data: "
                + json.dumps(done).encode()
                + b"\n\ndata: "
                + json.dumps(usage).encode()
                + b"\n\ndata: [DONE]\n\n"
            )
            await resp.write_eof()
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--ttft", type=float, default=0.1)
    parser.add_argument("--role-lead", type=float, default=0.0, help="send a role chunk this long before")
    args = parser.parse_args()
    web.run_app(
        make_app(args.tokens, args.rate, args.ttft, args.role_lead),
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        backlog=4096,
    )


if __name__ == "__main__":
    main()
