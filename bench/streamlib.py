"""Shared pieces of the streaming benchmarks (bench/stream.py, bench/health_under_load.py):
processes, targets, and the closed-loop load client that measures every chunk's delay."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
STAMP = re.compile(rb"(1\d{9}\.\d{6}) ")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SERVER_CORE, CLIENT_CORE = "0", 1
# The streaming paths measured side by side, and what a client does for each.
PATHS = {
    "stream": "POST /chat/stream",
    "v1": "POST /v1/chat/completions",
    "events": "POST /api/chats/{id}/messages + GET .../events",
}
# fresh: a new connection per request. keepalive: each client keeps one connection for
# `keepalive_requests` streams in a row (browsers, the openai SDK and proxies reuse theirs).
CONNECTIONS = ("fresh", "keepalive")


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
        self.proc = subprocess.Popen(args, env=env, stdout=self.log, stderr=subprocess.STDOUT)  # noqa: S603

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
    name: str  # direct, reference or gust
    path: str  # a key of PATHS (direct: the upstream itself)
    base: str  # http://host:port
    headers: dict[str, str]
    proc: Proc | None = None

    @property
    def label(self) -> str:
        return self.name if self.name == "direct" else f"{self.name}:{self.path}"


@dataclass
class Result:
    target: str
    k: int
    connections: str = "fresh"
    chunks: int = 0  # delivered in the window
    window: float = 0.0
    streams: int = 0
    errors: int = 0
    rejected: int = 0
    ttft: list[float] = field(default_factory=list)
    ttft_reused: list[float] = field(default_factory=list)  # keepalive: requests 2..N of a connection
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
            "connections": self.connections,
            "chunks_per_s": round(self.rate, 1),
            "streams": self.streams,
            "errors": self.errors,
            "rejected_503": self.rejected,
            "ttft_p50_ms": round(pct(self.ttft, 0.5) * 1000, 2),
            "ttft_p99_ms": round(pct(self.ttft, 0.99) * 1000, 2),
            "ttft_reused_p50_ms": round(pct(self.ttft_reused, 0.5) * 1000, 2),
            "ttft_reused_p99_ms": round(pct(self.ttft_reused, 0.99) * 1000, 2),
            "chunk_p50_ms": round(pct(self.latency, 0.5) * 1000, 2),
            "chunk_p99_ms": round(pct(self.latency, 0.99) * 1000, 2),
            "tail_p50_ms": round(pct(self.tail, 0.5) * 1000, 2),
            "tail_p99_ms": round(pct(self.tail, 0.99) * 1000, 2),
            "cpu_us_per_chunk": round(self.cpu / self.chunks * 1e6, 1) if self.chunks and self.cpu else None,
        }


def completion_body() -> dict[str, Any]:
    return {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "go"}]}


Request = tuple[str, str, str | None]  # method, URL, body


async def _begin(
    session: aiohttp.ClientSession, target: Target, chat_id: str | None
) -> tuple[Request | None, int | None]:
    """What to read one stream from, or the status that refused it before (events)."""
    if target.name == "direct" or target.path == "v1":
        return ("POST", target.base + "/v1/chat/completions", json.dumps(completion_body())), None
    body = json.dumps({"message": "go", "model": "bench"})
    if target.path == "stream":
        return ("POST", target.base + "/chat/stream", body), None
    # events: the message (timed from its POST, as the others from theirs), then its events.
    url = f"{target.base}/api/chats/{chat_id}/messages"
    async with session.post(url, data=body, headers=target.headers) as r:
        await r.read()
        if r.status != 202:
            return None, r.status
    return ("GET", f"{target.base}/api/chats/{chat_id}/events", None), None


async def _new_chat(session: aiohttp.ClientSession, target: Target) -> str:
    title = json.dumps({"title": "bench"})
    async with session.post(target.base + "/api/chats", data=title, headers=target.headers) as r:
        if r.status != 201:
            raise aiohttp.ClientResponseError(r.request_info, (), status=r.status)
        chat_id: str = (await r.json())["id"]
        return chat_id


async def one_stream(
    session: aiohttp.ClientSession, target: Target, result: Result, w0: float, w1: float, reused: bool = False
) -> None:
    in_window = w0 <= time.time() <= w1
    first = True
    last = 0.0
    try:
        # events: a chat of its own first, not timed (the others create theirs in the request).
        events = target.path == "events" and target.name != "direct"
        chat_id = await _new_chat(session, target) if events else None
        started = time.time()
        in_window = w0 <= started <= w1
        request, status = await _begin(session, target, chat_id)
        if request is not None:
            method, url, data = request
            async with session.request(method, url, data=data, headers=target.headers) as resp:
                status = resp.status
                if status == 200:
                    async for line in resp.content:
                        now = time.time()
                        if line.startswith((b"event: error", b'data: {"error"', b'{"type":"error"')):
                            if in_window:
                                result.errors += 1
                            continue
                        match = STAMP.search(line)
                        if match is None:
                            continue
                        if first:
                            first = False
                            if in_window:
                                (result.ttft_reused if reused else result.ttft).append(now - started)
                        last = now
                        if w0 <= now <= w1:
                            result.chunks += 1
                            result.latency.append(now - float(match.group(1)))
        if status == 503:
            if in_window:
                result.rejected += 1
            await asyncio.sleep(1.0)  # clients honour Retry-After, capped at 1 s
            return
        if status != 200:
            if in_window:
                result.errors += 1
            await asyncio.sleep(0.5)
            return
        if in_window:
            result.streams += 1
            if last:
                result.tail.append(time.time() - last)
    except (TimeoutError, aiohttp.ClientError):
        if in_window:
            result.errors += 1


async def load(
    target: Target, k: int, ramp: float, warm: float, window: float, connections: str = "fresh",
    keepalive_requests: int = 8,
) -> Result:
    """K closed-loop clients; measure only [ramp + warm, ramp + warm + window]."""
    result = Result(target.label, k, connections, window=window)
    t0 = time.time()
    w0, w1 = t0 + ramp + warm, t0 + ramp + warm + window
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)

    async def client(i: int) -> None:
        await asyncio.sleep(ramp * i / k)
        while time.time() < w1:
            if connections == "fresh":
                connector = aiohttp.TCPConnector(force_close=True)
                async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                    await one_stream(session, target, result, w0, w1)
                continue
            # One connection (a pool of one) for several streams in a row, then a new one.
            connector = aiohttp.TCPConnector(limit=1)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                for n in range(keepalive_requests):
                    if time.time() >= w1:
                        break
                    await one_stream(session, target, result, w0, w1, reused=n > 0)

    async def sample_cpu() -> None:
        if target.proc is None:
            return
        await asyncio.sleep(max(0.0, w0 - time.time()))
        c0 = cpu_seconds(target.proc.pid)
        await asyncio.sleep(max(0.0, w1 - time.time()))
        result.cpu = cpu_seconds(target.proc.pid) - c0

    await asyncio.gather(sample_cpu(), *(client(i) for i in range(k)))
    return result


def start_upstream(port: int, tokens: int, rate: float, ttft: float, role_lead: float) -> Proc:
    return Proc(
        ["taskset", "-c", str(CLIENT_CORE), sys.executable, str(ROOT / "bench/upstream.py"),
         "--port", str(port), "--tokens", str(tokens), "--rate", str(rate), "--ttft", str(ttft),
         "--role-lead", str(role_lead)]
    )


async def start_reference(upstream_url: str, path: str) -> Target:
    port = free_port()
    proc = Proc(
        ["taskset", "-c", SERVER_CORE, sys.executable, str(ROOT / "bench/relay_ref.py"), "--port", str(port),
         "--upstream", upstream_url]
    )
    await wait_port(port)
    return Target("reference", path, f"http://127.0.0.1:{port}", {"Content-Type": "application/json"}, proc)


async def start_gust(
    upstream_url: str, path: str, data: Path, extra_env: dict[str, str], max_active: int | None = 100_000
) -> Target:
    """`python -m gust serve` on core 0 with its defaults (max_active None: the default limit)."""
    port = free_port()
    models = data / "models.json"
    data.mkdir(parents=True)  # noqa: ASYNC240 - set-up, before anything is measured
    models.write_text(  # noqa: ASYNC240
        json.dumps([{"id": "bench", "base_url": upstream_url, "context_window": 8192}])
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
            "LOG_LEVEL": "WARNING",
        }
    )
    if max_active is not None:
        env["MAX_ACTIVE_GENERATIONS"] = str(max_active)
    env.update(extra_env)
    command = ["taskset", "-c", SERVER_CORE, sys.executable, "-m", "gust", "serve"]
    proc = Proc(command, env, log=data / "server.log")
    await wait_port(port)
    base = f"http://127.0.0.1:{port}"
    account = {"email": "bench@example.com", "password": "bench password 1"}
    async with aiohttp.ClientSession() as session:
        async with session.post(base + "/api/auth/register", json=account) as resp:
            assert resp.status == 201, await resp.text()
        async with session.post(base + "/api/auth/login", json=account) as resp:
            token = (await resp.json())["access_token"]
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        if path == "v1":  # /v1 takes Gust API keys
            keys = base + "/api/auth/api-keys"
            async with session.post(keys, json={"name": "bench"}, headers=headers) as resp:
                assert resp.status == 201, await resp.text()
                headers["Authorization"] = f"Bearer {(await resp.json())['key']}"
    return Target("gust", path, base, headers, proc)
