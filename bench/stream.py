"""Streaming benchmark: Gust against a direct upstream and a minimal reference relay.

    python bench/stream.py                      # all scenarios, 3 repetitions
    python bench/stream.py --scenarios s1 --reps 3 --window 10

Three processes: the upstream (bench/upstream.py: 50 tokens/s, 200 tokens, 100 ms to
first token with a role chunk 20 ms before it, every token stamped with its send time),
the server under test pinned to core 0 with taskset, and this load client pinned to core 1.
Closed loop: K clients each open a stream, read it to the end and start the next; clients
start spread over a ramp, and only the steady window after it is measured. Each repetition
runs, for every connection mode (fresh; keep-alive: eight streams in a row on one
connection), direct and then, for every path (/chat/stream, /v1/chat/completions,
/api/chats/{id}/events), the reference relay (bench/relay_ref.py) and Gust back to back;
figures are medians over repetitions. See bench/README.md for what each scenario reports.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from streamlib import (
    CLIENT_CORE,
    CONNECTIONS,
    PATHS,
    ROOT,
    Proc,
    Result,
    Target,
    free_port,
    load,
    rss_bytes,
    start_gust,
    start_reference,
    start_upstream,
    wait_port,
)

Runs = dict[tuple[str, str], list[Result]]  # (connections, target label) -> one Result per repetition


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="gust-bench-"))
        self.upstream_port = free_port()
        self.upstream: Proc | None = None

    def start_upstream(self, tokens: int | None = None) -> Proc:
        a = self.args
        return start_upstream(self.upstream_port, tokens or a.tokens, a.rate, a.ttft, a.role_lead)

    @property
    def upstream_url(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}/v1"

    def direct(self) -> Target:
        base = f"http://127.0.0.1:{self.upstream_port}"
        return Target("direct", "v1", base, {"Content-Type": "application/json"})

    async def gust(self, path: str = "stream", max_active: int | None = 100_000) -> Target:
        extra = dict(item.split("=", 1) for item in self.args.gust_env)
        data = self.tmp / f"gust-{free_port()}"
        return await start_gust(self.upstream_url, path, data, extra, max_active)

    async def measure(
        self, kind: str, k: int, path: str = "stream", connections: str = "fresh", **gust_options: Any
    ) -> Result:
        a = self.args
        if kind == "direct":
            target = self.direct()
        elif kind == "reference":
            target = await start_reference(self.upstream_url, path)
        else:
            target = await self.gust(path, **gust_options)
        try:
            return await load(target, k, a.ramp, a.warm, a.window, connections, a.keepalive_requests)
        finally:
            if target.proc is not None:
                target.proc.stop()

    async def run(self) -> dict[str, Any]:
        os.sched_setaffinity(0, {CLIENT_CORE})
        self.upstream = self.start_upstream()
        await wait_port(self.upstream_port)
        report: dict[str, Any] = {"config": vars(self.args), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            if "s1" in self.args.scenarios:
                report["s1"] = await self.s1()
            given = self.args.s3_capacity
            if "s2" in self.args.scenarios or ("s3" in self.args.scenarios and given is None):
                report["s2"] = await self.s2()
            if "s3" in self.args.scenarios:
                if given is None:
                    given = report["s2"]["capacity"].get(f"{self.args.connections[0]}:gust:stream") or 25
                report["s3"] = await self.s3(given)
            if "s4" in self.args.scenarios:
                self.upstream.stop()
                report["s4"] = await self.s4()
        finally:
            if self.upstream is not None:
                self.upstream.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return report

    async def reps(self, k: int) -> Runs:
        """Every repetition: per connection mode, direct, then the relay and Gust on each path."""
        out: Runs = {}
        for rep in range(self.args.reps):
            for connections in self.args.connections:
                plan = [("direct", "v1")] + [(kind, path) for path in self.args.paths
                                             for kind in ("reference", "gust")]
                for kind, path in plan:
                    result = await self.measure(kind, k, path, connections)
                    out.setdefault((connections, result.target), []).append(result)
                    print(f"  rep {rep + 1} {connections:9} {result.target:16} K={k}: "
                          f"{json.dumps(result.summary())}", flush=True)
        return out

    @staticmethod
    def median(results: list[Result], key: str) -> float:
        values = [r.summary()[key] for r in results if r.summary()[key] is not None]
        values = [v for v in values if v == v]  # NaN: no sample in that repetition
        return statistics.median(values) if values else float("nan")

    def compare(self, runs: Runs, k: int) -> dict[str, Any]:
        """Added figures (target minus direct, same connection mode) and Gust against the relay."""
        out: dict[str, Any] = {}
        for connections in self.args.connections:
            direct = runs[(connections, "direct")]
            for path in self.args.paths:
                row: dict[str, Any] = {}
                for kind in ("reference", "gust"):
                    rs = runs[(connections, f"{kind}:{path}")]
                    row[kind] = {
                        f"added_{key}": round(self.median(rs, key) - self.median(direct, key), 2)
                        for key in ("ttft_p50_ms", "ttft_p99_ms", "ttft_reused_p50_ms", "ttft_reused_p99_ms",
                                    "chunk_p50_ms", "chunk_p99_ms")
                    } | {"cpu_us_per_chunk": self.median(rs, "cpu_us_per_chunk"),
                         "delivered_vs_direct": round(self.median(rs, "chunks_per_s")
                                                      / (self.median(direct, "chunks_per_s") or 1), 3)}
                gust, ref = row["gust"], row["reference"]
                ttft = "added_ttft_reused_p50_ms" if connections == "keepalive" else "added_ttft_p50_ms"
                row["gust_minus_reference_ttft_p50_ms"] = round(gust[ttft] - ref[ttft], 2)
                row["gust_minus_reference_ttft_p99_ms"] = round(
                    gust[ttft.replace("p50", "p99")] - ref[ttft.replace("p50", "p99")], 2)
                row["cpu_ratio_gust_vs_reference"] = (
                    round(gust["cpu_us_per_chunk"] / ref["cpu_us_per_chunk"], 2)
                    if gust["cpu_us_per_chunk"] and ref["cpu_us_per_chunk"] else None
                )
                out[f"{connections}:{path}"] = row
                which = "requests 2+" if connections == "keepalive" else "all requests"
                print(f"K={k} {connections:9} {PATHS[path]:47} added TTFT p50 ({which}): relay "
                      f"{ref[ttft]:7.2f} ms, gust {gust[ttft]:7.2f} ms, gust - relay "
                      f"{row['gust_minus_reference_ttft_p50_ms']:7.2f} ms (p99 "
                      f"{row['gust_minus_reference_ttft_p99_ms']:.2f}); CPU/chunk gust/relay "
                      f"{row['cpu_ratio_gust_vs_reference']}", flush=True)
        return out

    async def s1(self, k: int = 25) -> dict[str, Any]:
        print(f"S1: K={k}", flush=True)
        runs = await self.reps(k)
        medians = {
            f"{connections}:{label}": {key: self.median(rs, key) for key in rs[0].summary()
                                       if key not in ("target", "k", "connections")}
            for (connections, label), rs in runs.items()
        }
        return {"k": k, "medians": medians, "compare": self.compare(runs, k)}

    async def s2(self) -> dict[str, Any]:
        points: dict[int, dict[str, Any]] = {}
        capacity: dict[str, int] = {}
        for k in self.args.sweep:
            print(f"S2: K={k}", flush=True)
            runs = await self.reps(k)
            point = self.compare(runs, k)
            for name, row in point.items():
                connections, path = name.split(":")
                for kind in ("reference", "gust"):
                    ok = row[kind]["delivered_vs_direct"] >= 0.99 and row[kind]["added_chunk_p99_ms"] <= 50
                    row[kind]["ok"] = ok
                    key = f"{connections}:{kind}:{path}"
                    capacity.setdefault(key, 0)
                    if ok and k > capacity[key]:
                        capacity[key] = k
            points[k] = point
        ratios = {
            f"{connections}:{path}": (
                round(capacity[f"{connections}:gust:{path}"] / capacity[f"{connections}:reference:{path}"], 2)
                if capacity.get(f"{connections}:reference:{path}") else None
            )
            for connections in self.args.connections for path in self.args.paths
        }
        print(f"S2 capacity: {json.dumps(capacity)}; gust/reference = {json.dumps(ratios)}", flush=True)
        return {"points": points, "capacity": capacity, "capacity_ratio": ratios}

    async def s3(self, capacity: int) -> dict[str, Any]:
        capacity = max(capacity, 25)
        k = 2 * capacity
        print(f"S3: overload K={k} with MAX_ACTIVE_GENERATIONS={capacity}", flush=True)
        results = []
        for rep in range(self.args.reps):
            result = await self.measure("gust", k, "stream", "fresh", max_active=capacity)
            results.append(result.summary())
            print(f"  rep {rep + 1}: {json.dumps(result.summary())}", flush=True)
        keys = ("errors", "rejected_503", "ttft_p99_ms", "chunk_p99_ms", "chunks_per_s")
        med = {key: statistics.median(r[key] for r in results) for key in keys}
        return {"k": k, "max_active": capacity, "medians": med}

    async def warm_up(self, session: aiohttp.ClientSession, target: Target, n: int = 20) -> None:
        """Open and stop a few streams first, so one-time costs (first connection to the
        upstream, lazily built objects, allocator arenas) are not counted per stream."""
        url, body = target.base + "/chat/stream", json.dumps({"message": "go", "model": "bench"})

        async def one() -> None:
            async with session.post(url, data=body, headers=target.headers) as r:
                deltas = 0
                chat_id = None
                async for line in r.content:
                    if line.startswith(b"data: ") and chat_id is None:
                        chat_id = json.loads(line[6:]).get("chat_id")
                    if line.startswith(b"event: delta"):
                        deltas += 1
                        if deltas == 25:
                            break
            stop = f"{target.base}/api/chats/{chat_id}/stop"
            async with session.post(stop, headers=target.headers) as r:
                assert r.status == 200, await r.text()

        await asyncio.gather(*(one() for _ in range(n)))

    async def s4(self) -> dict[str, Any]:
        """RSS per open stream, and RSS growth over a soak."""
        a = self.args
        self.upstream = self.start_upstream(tokens=int(a.rate * (a.soak + 120)))  # streams outlive the test
        await wait_port(self.upstream_port)
        target = await self.gust()
        assert target.proc is not None
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

                url, body = target.base + "/chat/stream", json.dumps({"message": "go", "model": "bench"})

                async def hold(stop: asyncio.Event) -> None:
                    async with session.post(url, data=body, headers=target.headers) as r:
                        async for _ in r.content:
                            if stop.is_set():
                                return

                await self.warm_up(session, target)
                await asyncio.sleep(2)
                idle = rss_bytes(target.proc.pid)
                stop = asyncio.Event()
                holders = [asyncio.ensure_future(hold(stop)) for _ in range(a.open_streams)]
                await asyncio.sleep(10)
                busy = rss_bytes(target.proc.pid)
                per_stream = (busy - idle) / a.open_streams
                print(
                    f"S4: idle RSS {idle / 2**20:.1f} MiB, {a.open_streams} open streams "
                    f"{busy / 2**20:.1f} MiB: {per_stream / 1024:.1f} KiB per stream",
                    flush=True,
                )
                samples = []
                t0 = time.time()
                while time.time() - t0 < a.soak:
                    await asyncio.sleep(min(10, a.soak))
                    samples.append((round(time.time() - t0), rss_bytes(target.proc.pid)))
                stop.set()
                for holder in holders:
                    holder.cancel()
                growth = samples[-1][1] - samples[0][1] if len(samples) > 1 else 0
                print(
                    f"S4 soak {a.soak}s: RSS {samples[0][1] / 2**20:.1f} -> {samples[-1][1] / 2**20:.1f} MiB",
                    flush=True,
                )
        finally:
            target.proc.stop()
        return {
            "idle_rss_mib": round(idle / 2**20, 1),
            "open_streams": a.open_streams,
            "rss_per_stream_kib": round(per_stream / 1024, 1),
            "soak_s": a.soak,
            "soak_rss_mib": [(t, round(r / 2**20, 1)) for t, r in samples],
            "soak_growth_mib": round(growth / 2**20, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", nargs="+", default=["s1", "s2", "s3", "s4"])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--ramp", type=float, default=2.0)
    parser.add_argument("--warm", type=float, default=3.0)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--ttft", type=float, default=0.1)
    parser.add_argument("--role-lead", type=float, default=0.02,
                        help="the upstream's role chunk comes this long before the first delta (0: none)")
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--connections", nargs="+", choices=CONNECTIONS, default=list(CONNECTIONS))
    parser.add_argument("--keepalive-requests", type=int, default=8,
                        help="keepalive: streams in a row on one connection before a new one")
    parser.add_argument("--sweep", type=int, nargs="+", default=[25, 50, 100, 200, 300, 400])
    parser.add_argument("--open-streams", type=int, default=200)
    parser.add_argument(
        "--s3-capacity",
        type=int,
        default=None,
        help="run S3 at 2x this many streams instead of the capacity S2 finds (S2 is then skipped)",
    )
    parser.add_argument("--soak", type=float, default=600.0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out")
    parser.add_argument(
        "--gust-env",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="extra settings for the Gust server (e.g. GENERATE_TITLES=false)",
    )
    args = parser.parse_args()
    report = asyncio.run(Bench(args).run())
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"stream-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"report: {path}")


if __name__ == "__main__":
    main()
