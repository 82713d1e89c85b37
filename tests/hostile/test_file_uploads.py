"""Hostile uploads over HTTP: oversize streams, a zip bomb, names that try to escape."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.hostile.test_file_extraction import zip_bomb_docx
from tests.support.app_server import RunningApp
from tests.support.backends import Backend
from tests.support.uploads import BOUNDARY, MULTIPART, files_app, form, settled, upload
from tests.support.wait import until

LIMIT = 64 * 1024


@pytest.fixture
async def app(backend: Backend, data_dir: Path) -> AsyncIterator[RunningApp]:
    async with files_app(backend, data_dir, file_max_bytes=LIMIT, embeddings="none") as running:
        yield running


def stored(app: RunningApp) -> list[Path]:
    root = app.settings.files_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_an_oversize_streamed_upload_is_413_and_nothing_is_kept(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    alice = await app.sign_up(http, "alice@example.com")
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.txt\"\r\n"
            "Content-Type: text/plain\r\n\r\n").encode()

    async def body() -> AsyncIterator[bytes]:  # chunked: no Content-Length announces the size
        yield head
        for _ in range(4 * LIMIT // 4096):
            yield b"all work and no play " * 195 + b"\n"
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    headers = {"Authorization": f"Bearer {alice.token}", "Content-Type": MULTIPART}
    async with http.post(app.url + "/api/files", data=body(), headers=headers) as resp:
        answer = await resp.json()
        assert resp.status == 413, answer
        assert answer["error"]["code"] == "file_too_large"
    # Announced too large: refused from the headers, before the body is read.
    declared = await upload(alice, "big.txt", b"x" * (2 * LIMIT))
    assert declared.status == 413, declared.text
    assert (await alice.get("/api/files")).json["items"] == []
    assert stored(app) == []
    small = await upload(alice, "small.txt", b"still fine\n")
    assert small.status == 201, small.text


@pytest.mark.both_stores
async def test_a_zip_bomb_docx_fails_with_its_code_while_health_answers(
    backend: Backend, data_dir: Path, http: aiohttp.ClientSession
) -> None:
    bomb = zip_bomb_docx()
    async with files_app(backend, data_dir, file_max_bytes=len(bomb) + 1024, embeddings="none") as running:
        alice = await running.sign_up(http, "alice@example.com")
        statuses: list[int] = []
        stop = asyncio.Event()

        async def probe() -> None:
            while not stop.is_set():
                async with http.get(running.url + "/health") as resp:
                    statuses.append(resp.status)
                await asyncio.sleep(0.1)

        prober = asyncio.create_task(probe())
        try:
            created = await upload(alice, "report.docx", bomb)
            assert created.status == 201, created.text
            done = await settled(alice, created.json["id"])
        finally:
            stop.set()
            await prober
        assert done["status"] == "failed" and done["error"]["code"] == "archive_too_large", done
        assert statuses and set(statuses) == {200}


async def test_names_that_try_to_escape_are_cleaned(app: RunningApp, http: aiohttp.ClientSession) -> None:
    alice = await app.sign_up(http, "alice@example.com")
    names = {
        "../../../../etc/passwd.txt": "passwd.txt",
        "..\\..\\windows\\win.ini": "win.ini",
        "evil\x01\x7fname.txt": "evilname.txt",
        "/": "file",
    }
    for raw, shown in names.items():
        body = form("PLACEHOLDER", b"text\n").replace(b"PLACEHOLDER", raw.encode())
        created = await alice.request("POST", "/api/files", data=body, headers={"Content-Type": MULTIPART})
        assert created.status == 201, (raw, created.text)
        assert created.json["name"] == shown, raw
        content = await alice.get(f"/api/files/{created.json['id']}/content")
        disposition = content.headers["Content-Disposition"]
        assert disposition.startswith(f'attachment; filename="{shown}"'), disposition
    quoted = await upload(alice, 'r\u00e9sum\u00e9 final;.txt', b"text\n")
    disposition = (await alice.get(f"/api/files/{quoted.json['id']}/content")).headers["Content-Disposition"]
    assert disposition == ("attachment; filename=\"r_sum_ final_.txt\"; "
                           "filename*=UTF-8''r%C3%A9sum%C3%A9%20final%3B.txt"), disposition
    root = app.settings.files_dir.resolve()
    assert all(path.resolve().is_relative_to(root) for path in stored(app))
    assert not (app.settings.data_dir.parent / "etc").exists()


async def test_an_upload_cut_off_mid_stream_leaves_nothing(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    alice = await app.sign_up(http, "alice@example.com")
    body = form("cut.txt", b"half of a file\n" * 2000)
    host, port = app.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    head = (f"POST /api/files HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {alice.token}\r\n"
            f"Content-Type: {MULTIPART}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    writer.write(head + body[: len(body) // 2])
    await writer.drain()

    async def partial_written() -> bool:  # the storage has begun writing this upload
        return bool(stored(app))

    assert await until(partial_written, timeout=10)
    writer.close()  # the client goes away before the rest of the body
    await writer.wait_closed()
    assert await until(lambda: not stored(app), timeout=10), stored(app)
    assert (await alice.get("/api/files")).json["items"] == []
