"""Streaming benchmark: Gust against a direct upstream and a minimal reference relay.

    python bench/stream.py                      # all scenarios, 3 repetitions
    python bench/stream.py --scenarios s1 --reps 3 --window 10

Three processes: the upstream (bench/upstream.py: 50 tokens/s, 200 tokens, 100 ms to
first token, every token stamped with its send time), the server under test pinned to
core 0 with taskset, and this load client pinned to core 1. Closed loop: K clients
each open a stream, read it to the end and start the next; clients start spread over
a ramp, and only the steady window after it is measured. Each repetition runs direct,
the reference relay (bench/relay_ref.py) and Gust back to back; figures are medians
over repetitions. See bench/README.md for what each scenario reports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
STAMP = re.compile(rb"(1\d{9}\.\d{6}) ")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVER_CORE, CLIENT_CORE = "0", 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_port(port: int, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


class Proc:
    def __init__(self, args: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> None:
        self.log = (log or Path(os.devnull)).open("wb")
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@dataclass
class Target:
    name: str
    url: str  # POST endpoint
    headers: dict[str, str]
    body: dict[str, Any]
    proc: Proc | None = None


@dataclass
class Result:
    target: str
    k: int
    chunks: int = 0  # delivered in the window
    window: float = 0.0
    streams: int = 0
    errors: int = 0
    rejected: int = 0
    ttft: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)
    tail: list[float] = field(default_factory=list)  # last chunk -> end of the response
    cpu: float = 0.0  # server CPU seconds in the window

    @property
    def rate(self) -> float:
        return self.chunks / self.window if self.window else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "k": self.k,
            "chunks_per_s": round(self.rate, 1),
            "streams": self.streams,
            "errors": self.errors,
            "rejected_503": self.rejected,
            "ttft_p50_ms": round(pct(self.ttft, 0.5) * 1000, 2),
            "ttft_p99_ms": round(pct(self.ttft, 0.99) * 1000, 2),
            "chunk_p50_ms": round(pct(self.latency, 0.5) * 1000, 2),
            "chunk_p99_ms": round(pct(self.latency, 0.99) * 1000, 2),
            "tail_p50_ms": round(pct(self.tail, 0.5) * 1000, 2),
            "tail_p99_ms": round(pct(self.tail, 0.99) * 1000, 2),
            "cpu_us_per_chunk": round(self.cpu / self.chunks * 1e6, 1) if self.chunks and self.cpu else None,
        }


async def one_stream(
    session: aiohttp.ClientSession, target: Target, result: Result, w0: float, w1: float
) -> None:
    started = time.time()
    in_window = w0 <= started <= w1
    first = True
    last = 0.0
    try:
        async with session.post(target.url, data=json.dumps(target.body), headers=target.headers) as resp:
            if resp.status == 503:
                if in_window:
                    result.rejected += 1
                await asyncio.sleep(min(float(resp.headers.get("Retry-After", "1")), 1.0))
                return
            if resp.status != 200:
                if in_window:
                    result.errors += 1
                await asyncio.sleep(0.5)
                return
            async for line in resp.content:
                now = time.time()
                if line.startswith(b"event: error"):
                    if in_window:
                        result.errors += 1
                    continue
                match = STAMP.search(line)
                if match is None:
                    continue
                if first:
                    first = False
                    if in_window:
                        result.ttft.append(now - started)
                last = now
                if w0 <= now <= w1:
                    result.chunks += 1
                    result.latency.append(now - float(match.group(1)))
            if in_window:
                result.streams += 1
                if last:
                    result.tail.append(time.time() - last)
    except (TimeoutError, aiohttp.ClientError):
        if in_window:
            result.errors += 1


async def load(target: Target, k: int, ramp: float, warm: float, window: float) -> Result:
    """K closed-loop clients; measure only [ramp + warm, ramp + warm + window]."""
    result = Result(target.name, k, window=window)
    t0 = time.time()
    w0, w1 = t0 + ramp + warm, t0 + ramp + warm + window
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client(i: int) -> None:
            await asyncio.sleep(ramp * i / k)
            while time.time() < w1:
                await one_stream(session, target, result, w0, w1)

        async def sample_cpu() -> None:
            if target.proc is None:
                return
            await asyncio.sleep(max(0.0, w0 - time.time()))
            c0 = cpu_seconds(target.proc.pid)
            await asyncio.sleep(max(0.0, w1 - time.time()))
            result.cpu = cpu_seconds(target.proc.pid) - c0

        await asyncio.gather(sample_cpu(), *(client(i) for i in range(k)))
    return result


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="gust-bench-"))
        self.upstream_port = free_port()
        self.upstream: Proc | None = None

    def start_upstream(self, tokens: int | None = None) -> Proc:
        a = self.args
        return Proc(
            [
                "taskset",
                "-c",
                str(CLIENT_CORE),
                sys.executable,
                str(ROOT / "bench/upstream.py"),
                "--port",
                str(self.upstream_port),
                "--tokens",
                str(tokens or a.tokens),
                "--rate",
                str(a.rate),
                "--ttft",
                str(a.ttft),
            ]
        )

    @property
    def upstream_url(self) -> str:
        return f"http://127.0.0.1:{self.upstream_port}/v1"

    def direct(self) -> Target:
        return Target(
            "direct",
            self.upstream_url + "/chat/completions",
            {"Content-Type": "application/json"},
            {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "go"}]},
        )

    async def reference(self) -> Target:
        port = free_port()
        proc = Proc(
            [
                "taskset",
                "-c",
                SERVER_CORE,
                sys.executable,
                str(ROOT / "bench/relay_ref.py"),
                "--port",
                str(port),
                "--upstream",
                self.upstream_url,
            ]
        )
        await wait_port(port)
        return Target(
            "reference",
            f"http://127.0.0.1:{port}/chat/stream",
            {"Content-Type": "application/json"},
            {"message": "go"},
            proc,
        )

    async def gust(self, max_active: int = 100_000) -> Target:
        port = free_port()
        data = self.tmp / f"gust-{port}"
        data.mkdir()
        models = data / "models.json"
        models.write_text(
            json.dumps([{"id": "bench", "base_url": self.upstream_url, "context_window": 8192}])
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB", "REDIS", "MEILI"))}
        env.update(
            {
                "PYTHONPATH": str(ROOT / "backend"),
                "DATA_DIR": str(data),
                "PORT": str(port),
                "HOST": "127.0.0.1",
                "MODELS_FILE": str(models),
                "LOCAL_MODEL": "false",
                "REGISTRATION": "open",
                "BCRYPT_ROUNDS": "4",
                "RATE_LIMIT_MESSAGES_PER_MINUTE": "0",
                "MAX_ACTIVE_GENERATIONS": str(max_active),
                "LOG_LEVEL": "WARNING",
            }
        )
        env.update(dict(item.split("=", 1) for item in self.args.gust_env))
        proc = Proc(
            ["taskset", "-c", SERVER_CORE, sys.executable, "-m", "gust", "serve"],
            env,
            log=data / "server.log",
        )
        await wait_port(port)
        base = f"http://127.0.0.1:{port}"
        account = {"email": "bench@example.com", "password": "bench password 1"}
        async with aiohttp.ClientSession() as session:
            async with session.post(base + "/api/auth/register", json=account) as resp:
                assert resp.status == 201, await resp.text()
            async with session.post(base + "/api/auth/login", json=account) as resp:
                token = (await resp.json())["access_token"]
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        return Target("gust", base + "/chat/stream", headers, {"message": "go", "model": "bench"}, proc)

    async def measure(self, kind: str, k: int, **gust_options: Any) -> Result:
        a = self.args
        target = (
            self.direct()
            if kind == "direct"
            else (await self.reference() if kind == "reference" else await self.gust(**gust_options))
        )
        try:
            return await load(target, k, a.ramp, a.warm, a.window)
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
                report["s3"] = await self.s3(given if given is not None else report["s2"]["capacity"]["gust"])
            if "s4" in self.args.scenarios:
                self.upstream.stop()
                report["s4"] = await self.s4()
        finally:
            if self.upstream is not None:
                self.upstream.stop()
            shutil.rmtree(self.tmp, ignore_errors=True)
        return report

    async def reps(
        self, k: int, kinds: tuple[str, ...] = ("direct", "reference", "gust")
    ) -> dict[str, list[Result]]:
        out: dict[str, list[Result]] = {kind: [] for kind in kinds}
        for rep in range(self.args.reps):
            for kind in kinds:
                result = await self.measure(kind, k)
                out[kind].append(result)
                print(f"  rep {rep + 1} {kind:9} K={k}: {json.dumps(result.summary())}", flush=True)
        return out

    @staticmethod
    def median(results: list[Result], key: str) -> float:
        values = [r.summary()[key] for r in results if r.summary()[key] is not None]
        return statistics.median(values) if values else float("nan")

    async def s1(self, k: int = 25) -> dict[str, Any]:
        print(f"S1: K={k}", flush=True)
        runs = await self.reps(k)
        m = {
            kind: {key: self.median(rs, key) for key in rs[0].summary() if key not in ("target", "k")}
            for kind, rs in runs.items()
        }
        added = {
            kind: {
                "added_ttft_p50_ms": round(m[kind]["ttft_p50_ms"] - m["direct"]["ttft_p50_ms"], 2),
                "added_ttft_p99_ms": round(m[kind]["ttft_p99_ms"] - m["direct"]["ttft_p99_ms"], 2),
                "added_chunk_p50_ms": round(m[kind]["chunk_p50_ms"] - m["direct"]["chunk_p50_ms"], 2),
                "added_chunk_p99_ms": round(m[kind]["chunk_p99_ms"] - m["direct"]["chunk_p99_ms"], 2),
                "cpu_us_per_chunk": m[kind]["cpu_us_per_chunk"],
            }
            for kind in ("reference", "gust")
        }
        ratio = round(added["gust"]["cpu_us_per_chunk"] / added["reference"]["cpu_us_per_chunk"], 2)
        print(f"S1 medians: {json.dumps(added)}; gust/reference CPU per chunk = {ratio}", flush=True)
        return {"k": k, "medians": m, "added": added, "cpu_ratio_gust_vs_reference": ratio}

    async def s2(self) -> dict[str, Any]:
        points: dict[int, dict[str, Any]] = {}
        capacity = {"reference": 0, "gust": 0}
        for k in self.args.sweep:
            print(f"S2: K={k}", flush=True)
            runs = await self.reps(k)
            direct_rate = self.median(runs["direct"], "chunks_per_s")
            direct_p99 = self.median(runs["direct"], "chunk_p99_ms")
            point: dict[str, Any] = {"direct_chunks_per_s": direct_rate}
            for kind in ("reference", "gust"):
                delivered = self.median(runs[kind], "chunks_per_s") / direct_rate if direct_rate else 0
                added_p99 = self.median(runs[kind], "chunk_p99_ms") - direct_p99
                ok = delivered >= 0.99 and added_p99 <= 50
                point[kind] = {
                    "delivered_vs_direct": round(delivered, 3),
                    "added_p99_ms": round(added_p99, 2),
                    "ok": ok,
                    "added_ttft_p50_ms": round(
                        self.median(runs[kind], "ttft_p50_ms") - self.median(runs["direct"], "ttft_p50_ms"), 2
                    ),
                    "added_ttft_p99_ms": round(
                        self.median(runs[kind], "ttft_p99_ms") - self.median(runs["direct"], "ttft_p99_ms"), 2
                    ),
                }
                if ok and k > capacity[kind]:
                    capacity[kind] = k
            points[k] = point
            print(f"S2 K={k}: {json.dumps(point)}", flush=True)
        ratio = round(capacity["gust"] / capacity["reference"], 2) if capacity["reference"] else None
        print(f"S2 capacity: {capacity}; gust/reference = {ratio}", flush=True)
        return {"points": points, "capacity": capacity, "capacity_ratio": ratio}

    async def s3(self, capacity: int) -> dict[str, Any]:
        capacity = max(capacity, 25)
        k = 2 * capacity
        print(f"S3: overload K={k} with MAX_ACTIVE_GENERATIONS={capacity}", flush=True)
        results = []
        for rep in range(self.args.reps):
            result = await self.measure("gust", k, max_active=capacity)
            results.append(result.summary())
            print(f"  rep {rep + 1}: {json.dumps(result.summary())}", flush=True)
        keys = ("errors", "rejected_503", "ttft_p99_ms", "chunk_p99_ms", "chunks_per_s")
        med = {key: statistics.median(r[key] for r in results) for key in keys}
        return {"k": k, "max_active": capacity, "medians": med}

    async def warm_up(self, session: aiohttp.ClientSession, target: Target, n: int = 20) -> None:
        """Open and stop a few streams first, so one-time costs (first connection to the
        upstream, lazily built objects, allocator arenas) are not counted per stream."""

        async def one() -> None:
            async with session.post(target.url, data=json.dumps(target.body), headers=target.headers) as r:
                deltas = 0
                chat_id = None
                async for line in r.content:
                    if line.startswith(b"data: ") and chat_id is None:
                        chat_id = json.loads(line[6:]).get("chat_id")
                    if line.startswith(b"event: delta"):
                        deltas += 1
                        if deltas == 25:
                            break
            stop = target.url.replace("/chat/stream", f"/api/chats/{chat_id}/stop")
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

                async def hold(stop: asyncio.Event) -> None:
                    async with session.post(
                        target.url, data=json.dumps(target.body), headers=target.headers
                    ) as r:
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
