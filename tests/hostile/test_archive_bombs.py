"""Hostile import files against a real `python -m gust serve` process (issue 18, finding 1).

Each shape is refused with a clear 413/422 code while /health answers every probe sent
every 100 ms (each probe may take up to 1 s), and the server process's peak RSS (VmHWM)
stays under 300 MB. The bombs are generated here, never committed.
"""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.hostile.zipcraft import DEFLATED, STORED, RawMember, build, deflated_zeros, member
from tests.integration.test_processes import gust_serve, register_and_login
from tests.support.app_server import ServerProcess

PROBE_EVERY = 0.1
PROBE_TIMEOUT = 1.0
MAX_RSS_KIB = 300 * 1024


@dataclass(frozen=True)
class Bomb:
    name: str
    make: Callable[[], bytes]
    status: int
    code: str | None
    content_type: str = "application/zip"


def lying_sizes() -> bytes:
    """8 members declaring 100 bytes each that inflate to 1 GiB each (an 8 MB upload)."""
    zeros = deflated_zeros(1024)
    return build([RawMember(f"chats/{i}.json", zeros, DEFLATED, declared_size=100) for i in range(8)])


def huge_ratio() -> bytes:
    """One honest member: 40 MiB of zeros in about 40 KB."""
    return build([RawMember("chats/big.json", deflated_zeros(40), DEFLATED, declared_size=40 << 20)])


def nested() -> bytes:
    """42.zip-style: archives of archives of 1 GiB members (sizes declared honestly)."""
    gib = deflated_zeros(1024)
    leaf = build([RawMember(f"{i}.json", gib, DEFLATED, declared_size=1 << 30) for i in range(4)])
    middle = build([member(f"chats/{i}.json", leaf) for i in range(4)])
    return build([member(f"chats/{i}.json", middle) for i in range(4)])


def many_members() -> bytes:
    """30,000 tiny members (more than ARCHIVE_MAX_MEMBERS' default 25,000)."""
    return build([RawMember(f"chats/{i}.json", b"{}", STORED, crc=zlib.crc32(b"{}")) for i in range(30_000)])


def deep_json_in_zip() -> bytes:
    depth = 200_000
    return build([member("chats/deep.json", b"[" * depth + b"]" * depth)])


def traversal() -> bytes:
    doc = {"format": "gust.chat", "version": 1, "chat": {"title": "x", "created_at": "2025-01-01T00:00:00Z"},
           "messages": []}
    return build([member("../../../../tmp/gust-owned.json", json.dumps(doc).encode())])


def honest_export() -> bytes:
    """Not a bomb: 400 chats of 20 messages (16 MB of JSON), as GET /api/export writes them.
    Its thousands of writes must leave room for other requests too."""
    def document(c: int) -> bytes:
        messages = [{"id": f"m{n}", "parent_id": f"m{n - 1}" if n else None,
                     "role": "user" if n % 2 == 0 else "assistant",
                     "content": f"{c}/{n} " + "lorem ipsum " * 160,
                     "created_at": "2025-01-01T00:00:00Z"} for n in range(20)]
        return json.dumps({"format": "gust.chat", "version": 1, "messages": messages,
                           "chat": {"title": f"Chat {c}", "created_at": "2025-01-01T00:00:00Z"}}).encode()
    return build([member(f"chats/{c}.json", document(c)) for c in range(400)])


def deep_json() -> bytes:
    return b"[" * 1_000_000 + b"]" * 1_000_000


def expanding_json() -> bytes:
    """48 MB of `{},` that a JSON parser turns into 16 million dicts (well over 1 GiB)."""
    return b"[" + b"{}," * 16_000_000 + b"{}]"


BOMBS = [
    Bomb("lying sizes", lying_sizes, 413, "archive_too_large"),
    Bomb("huge ratio", huge_ratio, 422, "archive_ratio"),
    Bomb("nested archives", nested, 422, "archive_nested"),
    Bomb("30,000 members", many_members, 413, "archive_too_many_members"),
    Bomb("deep JSON in a ZIP", deep_json_in_zip, 400, "json_too_deep"),
    Bomb("path traversal", traversal, 422, "archive_unsafe_path"),
    Bomb("deep JSON", deep_json, 400, "json_too_deep", "application/json"),
    Bomb("expanding JSON", expanding_json, 413, "upload_too_complex", "application/json"),
    Bomb("big honest export", honest_export, 200, None),
]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    process = gust_serve({"DATA_DIR": str(tmp_path / "data")}, tmp_path)
    try:
        await process.wait_ready()
        yield process
    finally:
        process.kill()


def peak_rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert match, status
    return int(match.group(1))


async def probe_while(
    session: aiohttp.ClientSession, url: str, work: asyncio.Future[tuple[int, str]]
) -> tuple[int, int]:
    """Probe /health every 100 ms until `work` is done: (probes sent, probes answered 200)."""
    timeout = aiohttp.ClientTimeout(total=PROBE_TIMEOUT)

    async def probe() -> bool:
        try:
            async with session.get(url + "/health", timeout=timeout) as resp:
                return resp.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    probes: list[asyncio.Task[bool]] = []
    while not work.done():
        probes.append(asyncio.create_task(probe()))
        await asyncio.wait([work], timeout=PROBE_EVERY)
    answered = await asyncio.gather(*probes)
    return len(answered), sum(answered)


async def test_hostile_imports_are_refused_while_the_server_stays_responsive_and_small(
    server: ServerProcess,
) -> None:
    async with aiohttp.ClientSession() as session:
        token = await register_and_login(session, server.url, "mallory@example.com")
        headers = {"Authorization": f"Bearer {token}"}
        results = {}
        for bomb in BOMBS:
            body = bomb.make()

            async def upload(body: bytes = body, bomb: Bomb = bomb) -> tuple[int, str]:
                async with session.post(server.url + "/api/import", data=body,
                                        headers={**headers, "Content-Type": bomb.content_type},
                                        timeout=aiohttp.ClientTimeout(total=300)) as resp:
                    return resp.status, await resp.text()

            work = asyncio.ensure_future(upload())
            sent, answered = await probe_while(session, server.url, work)
            status, text = work.result()
            code = json.loads(text)["error"]["code"] if status >= 400 else None
            results[bomb.name] = (status, code, sent, answered)
            assert len(body) <= 50 << 20  # every bomb fits under IMPORT_MAX_BYTES
        expected = {b.name: (b.status, b.code) for b in BOMBS}
        assert {name: r[:2] for name, r in results.items()} == expected, server.log()[-3000:]
        for name, (_status, _code, sent, answered) in results.items():
            assert sent >= 1 and answered == sent, f"{name}: /health answered {answered} of {sent} probes"
        # Nothing hostile was imported, and the server still works.
        async with session.get(server.url + "/api/chats?limit=200", headers=headers) as resp:
            assert resp.status == 200
            assert {c["title"] for c in (await resp.json())["items"]} <= {f"Chat {c}" for c in range(400)}
    assert not Path("/tmp/gust-owned.json").exists()
    assert peak_rss_kib(server.proc.pid) < MAX_RSS_KIB

