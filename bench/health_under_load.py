"""Health under load: do /health and /health/ready keep answering at the admission limit?

    PYTHONPATH=backend .venv/bin/python bench/health_under_load.py              # the defaults
    PYTHONPATH=backend .venv/bin/python bench/health_under_load.py --streams 20 --duration 5   # smoke

Gust runs with its defaults (`python -m gust serve`, pinned to core 0) against the fake bench
upstream (bench/upstream.py, 50 tokens/s, on core 1 with this client). The client opens
`--streams` streams (default: MAX_ACTIVE_GENERATIONS's default, the admission limit), each
long enough to outlive the measurement, and reads them all; once they are open it probes
`GET /health` and `GET /health/ready` every `--interval` seconds for `--duration` seconds,
each probe on a new connection with a 10 s timeout (as an orchestrator's probe does), and
prints p50 / p99 / max latency and the statuses seen. Target (issue 17): /health p99 ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

from streamlib import CLIENT_CORE, STAMP, free_port, pct, start_gust, start_upstream, wait_port


def default_limit() -> int:
    from gust.config import Settings

    value = Settings.model_fields["max_active_generations"].default
    assert isinstance(value, int)
    return value


class Streams:
    """Streams held open and read to the end; chunks counted to show the fan-out is running."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base = base
        self.headers = headers
        self.status: Counter[int] = Counter()
        self.open = 0
        self.chunks = 0

    async def hold(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        body = json.dumps({"message": "go", "model": "bench"})
        try:
            async with session.post(self.base + "/chat/stream", data=body, headers=self.headers) as resp:
                self.status[resp.status] += 1
                if resp.status != 200:
                    return
                self.open += 1
                async for line in resp.content:
                    if STAMP.search(line):
                        self.chunks += 1
                    if stop.is_set():
                        break
                self.open -= 1
        except (TimeoutError, aiohttp.ClientError):
            self.status[0] += 1


def record(out: list[tuple[float, int]], task: asyncio.Future[tuple[float, int]]) -> None:
    out.append(task.result())


async def probe(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            await resp.read()
            status = resp.status
    except (TimeoutError, aiohttp.ClientError):
        status = 0  # no answer within the timeout
    return time.perf_counter() - started, status


async def run(args: argparse.Namespace) -> dict[str, Any]:
    os.sched_setaffinity(0, {CLIENT_CORE})
    tmp = Path(tempfile.mkdtemp(prefix="gust-health-"))
    upstream_port = free_port()
    seconds = args.ramp + args.settle + args.duration + 30  # every stream outlives the probes
    upstream = start_upstream(upstream_port, int(args.rate * seconds), args.rate, 0.1, 0.02)
    gust = None
    try:
        await wait_port(upstream_port)
        extra = dict(item.split("=", 1) for item in args.gust_env)
        gust = await start_gust(f"http://127.0.0.1:{upstream_port}/v1", "stream", tmp / "gust", extra,
                                max_active=None)  # Gust's own default limit
        streams = Streams(gust.base, gust.headers)
        stop = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(sock_read=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as s:
            holders = []
            for _ in range(args.streams):
                holders.append(asyncio.ensure_future(streams.hold(s, stop)))
                await asyncio.sleep(args.ramp / args.streams)
            await asyncio.sleep(args.settle)
            print(f"{streams.open} streams open (statuses {dict(streams.status)}); probing for "
                  f"{args.duration:.0f} s", flush=True)
            samples: dict[str, list[tuple[float, int]]] = {"/health": [], "/health/ready": []}
            chunks0, t0 = streams.chunks, time.monotonic()
            pending = []
            while time.monotonic() - t0 < args.duration:
                for path, out in samples.items():
                    task = asyncio.ensure_future(probe(gust.base + path))
                    task.add_done_callback(functools.partial(record, out))
                    pending.append(task)
                await asyncio.sleep(args.interval)
            await asyncio.gather(*pending)
            chunk_rate = (streams.chunks - chunks0) / (time.monotonic() - t0)
            still_open = streams.open
            stop.set()
            for holder in holders:
                holder.cancel()
    finally:
        if gust is not None and gust.proc is not None:
            gust.proc.stop()
        upstream.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report: dict[str, Any] = {"streams_requested": args.streams, "streams_open": still_open,
                              "chunks_per_s": round(chunk_rate, 1), "probes": {}}
    for path, values in samples.items():
        latencies = [v for v, _ in values]
        report["probes"][path] = {
            "n": len(values),
            "p50_ms": round(pct(latencies, 0.5) * 1000, 1),
            "p99_ms": round(pct(latencies, 0.99) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
            "statuses": dict(Counter(status for _, status in values)),
        }
        print(f"{path:14} n={len(values)} p50 {report['probes'][path]['p50_ms']} ms, p99 "
              f"{report['probes'][path]['p99_ms']} ms, max {report['probes'][path]['max_ms']} ms, "
              f"statuses {report['probes'][path]['statuses']}", flush=True)
    print(f"while {still_open} streams delivered {chunk_rate:.0f} chunks/s", flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=None, help="default: MAX_ACTIVE_GENERATIONS's default")
    parser.add_argument("--rate", type=float, default=50.0, help="tokens per second of every stream")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which the streams open")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the probes")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of probing")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between probes of each endpoint")
    parser.add_argument("--gust-env", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=None, help="write the report as JSON here")
    args = parser.parse_args()
    if args.streams is None:
        args.streams = default_limit()
    report = asyncio.run(run(args))
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
