"""Gust as real processes: `python -m gust serve`, gunicorn with two workers, a dead MongoDB."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.app_server import ROOT, ServerProcess, make_settings, start_app, subprocess_env
from tests.support.env import free_port
from tests.support.wait import until

GUNICORN = str(Path(sys.executable).with_name("gunicorn"))


def gust_serve(env: dict[str, str], cwd: Path) -> ServerProcess:
    """`python -m gust serve` on a free port, run from `cwd` (no stray .env or ./data)."""
    port = free_port()
    full = {"PORT": str(port), "HOST": "127.0.0.1", "BCRYPT_ROUNDS": "4", "LOCAL_MODEL": "false", **env}
    return ServerProcess([sys.executable, "-m", "gust", "serve"], full, port, cwd=cwd)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, Path]]:
    """`python -m gust serve` with DATA_DIR in tmp (nothing else configured)."""
    data = tmp_path / "data"
    server = gust_serve({"DATA_DIR": str(data)}, tmp_path)
    try:
        await server.wait_ready()
        yield server, data
    finally:
        server.kill()


async def register_and_login(session: aiohttp.ClientSession, url: str, email: str) -> str:
    body = {"email": email, "password": "correct horse 1"}
    async with session.post(url + "/api/auth/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
    async with session.post(url + "/api/auth/login", json=body) as resp:
        assert resp.status == 200, await resp.text()
        token: str = (await resp.json())["access_token"]
    return token


# -- python -m gust ---------------------------------------------------------------------
def test_help_exits_0() -> None:
    result = subprocess.run([sys.executable, "-m", "gust", "--help"], env=subprocess_env({}), cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout and "usage: gust" in result.stdout
    result = subprocess.run([sys.executable, "-m", "gust", "serve", "--help"], env=subprocess_env({}),
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "--port" in result.stdout


def test_invalid_configuration_exits_2_with_the_reason(tmp_path: Path) -> None:
    env = subprocess_env({"GUST_ENV": "production", "DATA_DIR": str(tmp_path / "data")})
    result = subprocess.run([sys.executable, "-m", "gust", "serve"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "AUTH_SECRET_KEY is required when GUST_ENV=production" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data").exists()


async def test_serve_answers_health_and_keeps_data_in_data_dir(
    served: tuple[ServerProcess, Path],
) -> None:
    server, data = served
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/health") as resp:
            assert resp.status == 200
            body = await resp.json()
        assert body["status"] == "ok" and body["version"]
        token = await register_and_login(session, server.url, "ann@example.com")
        headers = {"Authorization": f"Bearer {token}"}
        async with session.post(server.url + "/api/chats", json={"title": "kept"}, headers=headers) as resp:
            assert resp.status == 201
    assert (data / "gust.db").is_file()
    assert (data / "secret_key").is_file()
    assert oct((data / "secret_key").stat().st_mode & 0o777) == "0o600"


async def test_sigterm_finishes_the_in_flight_request_then_exits_0(
    served: tuple[ServerProcess, Path],
) -> None:
    server, _ = served
    async with aiohttp.ClientSession() as session:
        token = await register_and_login(session, server.url, "ann@example.com")

    # A request that is in flight when SIGTERM arrives: its body is still being uploaded.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        f"POST /api/chats HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    # The server answers 100 Continue once it has read the headers: the request is in flight.
    continued = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
    assert continued.startswith(b"HTTP/1.1 100 "), continued
    first = b'{"title": "in flight'
    writer.write(b"%x\r\n%s\r\n" % (len(first), first))
    await writer.drain()

    server.signal(signal.SIGTERM)

    async def refused() -> bool:
        try:
            _, probe = await asyncio.open_connection("127.0.0.1", server.port)
        except OSError:
            return True
        probe.close()
        return False

    # The server stops accepting connections while the upload is still open.
    assert await until(refused, timeout=15, interval=0.05), "still accepting connections after SIGTERM"
    assert server.proc.poll() is None, "the server exited with a request in flight"

    rest = b'"}'
    writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(rest), rest))
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
    assert head.startswith(b"HTTP/1.1 201 "), head
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    chat = json.loads(await reader.readexactly(length))
    assert chat["title"] == "in flight"
    writer.close()

    assert await server.wait_exit(30) == 0, server.log()
    assert "stopped" in server.log()


async def test_sigint_exits_0(served: tuple[ServerProcess, Path]) -> None:
    server, _ = served
    server.signal(signal.SIGINT)
    assert await server.wait_exit(30) == 0, server.log()


async def test_json_logs_with_request_ids_and_debug_level(tmp_path: Path) -> None:
    server = gust_serve({"DATA_DIR": str(tmp_path / "data"), "LOG_FORMAT": "json", "DEBUG": "true"},
                        tmp_path)
    try:
        await server.wait_ready()
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/health", headers={"X-Request-ID": "probe-1"}):
                pass
            body = {"email": "ann@example.com", "password": "a secret password 1"}
            async with session.post(server.url + "/api/auth/register", json=body) as resp:
                assert resp.status == 201
            async with session.post(server.url + "/api/auth/login",
                                    json={**body, "password": "wrong password 1"}) as resp:
                assert resp.status == 401
        server.signal(signal.SIGTERM)
        assert await server.wait_exit(30) == 0
        entries = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
        assert entries and all({"time", "level", "logger", "message"} <= set(e) for e in entries)
        probe = [e for e in entries if e.get("request_id") == "probe-1"]
        # /health is logged at DEBUG level: visible because DEBUG=true.
        assert probe and probe[0]["level"] == "debug" and probe[0]["status"] == 200
        assert probe[0]["route"] == "HealthHandler" and probe[0]["method"] == "GET"
        failed = [e for e in entries if e.get("status") == 401]
        assert failed and failed[0]["level"] == "warning"
        assert "a secret password 1" not in server.log()  # request bodies are never logged
        assert "wrong password 1" not in server.log()
    finally:
        server.kill()


async def test_unreachable_mongodb_is_reported_by_readiness(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens there
    env = {"DATA_DIR": str(tmp_path / "data"),
           "MONGODB_URI": f"mongodb://127.0.0.1:{dead}/?serverSelectionTimeoutMS=1000"}
    server = gust_serve(env, tmp_path)
    try:
        await server.wait_ready(60)
        async with aiohttp.ClientSession() as session:
            # Listening before the store answers: "starting" first, then the store's error.
            async def past_start_up() -> bool:
                async with session.get(server.url + "/health/ready") as resp:
                    assert resp.status == 503
                    return bool((await resp.json())["components"]["store"]["detail"] != "starting")

            assert await until(past_start_up, timeout=30), "services never finished starting"
            for _ in range(2):
                async with session.get(server.url + "/health/ready") as resp:
                    assert resp.status == 503
                    ready = await resp.json()
                store = ready["components"]["store"]
                assert ready["status"] == "down"
                assert store["status"] == "down"
                assert store["backend"] == "mongodb"
                assert str(dead) in store["detail"]
                async with session.get(server.url + "/health") as resp:
                    assert resp.status == 200
                    assert (await resp.json())["status"] == "ok"
        assert "MongoDB unreachable at start-up" in server.log()
        server.signal(signal.SIGTERM)
        assert await server.wait_exit(30) == 0, server.log()
    finally:
        server.kill()


# -- gunicorn -------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _owner_of_connection(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """The process holding the server side of the TCP connection from `client_port`."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == server_port and \
                    int(remote.rsplit(":", 1)[1], 16) == client_port:
                inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in fd_dir.iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    env = {"DATA_DIR": str(tmp_path / "data"), "LOCAL_MODEL": "false", "BCRYPT_ROUNDS": "4"}
    server = ServerProcess(
        [GUNICORN, "-k", "tornado", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--control-socket", str(tmp_path / "gunicorn.ctl"), "gust.wsgi:application"],
        env, port, cwd=ROOT,
    )
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.signal(signal.SIGTERM)
            try:
                server.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        server.kill()


async def test_gunicorn_two_workers_serve_health_and_chats(gunicorn: ServerProcess) -> None:
    await gunicorn.wait_ready(60)
    workers = _children(gunicorn.proc.pid)
    assert len(workers) == 2, gunicorn.log()

    # Both workers answer: open connections until each worker has served one of them.
    answered: set[int] = set()
    for _ in range(20):
        streams = [await asyncio.open_connection("127.0.0.1", gunicorn.port) for _ in range(8)]
        for reader, writer in streams:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200 ")
            owner = _owner_of_connection(gunicorn.port, writer.get_extra_info("sockname")[1], workers)
            if owner is not None:
                answered.add(owner)
        for _, writer in streams:
            writer.close()
        if answered == set(workers):
            break
    assert answered == set(workers), f"only {answered} of {workers} answered"

    # The chats API across workers: a fresh connection per request, so either worker may
    # answer any of them (one signing key and one database for both).
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        token = await register_and_login(session, gunicorn.url, "ann@example.com")
        headers = {"Authorization": f"Bearer {token}"}
        created = []
        for i in range(6):
            async with session.post(gunicorn.url + "/api/chats", json={"title": f"chat {i}"},
                                    headers=headers) as resp:
                assert resp.status == 201, await resp.text()
                created.append((await resp.json())["id"])
        for _ in range(4):
            async with session.get(gunicorn.url + "/api/chats", headers=headers) as resp:
                assert resp.status == 200
                listed = [c["id"] for c in (await resp.json())["items"]]
            assert listed == list(reversed(created))
        async with session.get(gunicorn.url + "/health/ready") as resp:
            assert resp.status == 200, await resp.text()

    log = gunicorn.log()
    assert "resuming streams needs sticky sessions or REDIS_URL" in log
    assert "Traceback" not in log

    gunicorn.signal(signal.SIGTERM)
    assert await gunicorn.wait_exit(40) == 0, gunicorn.log()
    assert "Shutting down: Master" in gunicorn.log()


async def test_gunicorn_without_the_config_file_still_serves(tmp_path: Path) -> None:
    """Run from another directory with no gunicorn.conf.py: services start on first request."""
    port = free_port()
    env = {"DATA_DIR": str(tmp_path / "data"), "LOCAL_MODEL": "false", "BCRYPT_ROUNDS": "4"}
    server = ServerProcess(
        [GUNICORN, "-k", "tornado", "-w", "1", "-b", f"127.0.0.1:{port}",
         "--control-socket", str(tmp_path / "gunicorn.ctl"), "gust.wsgi:application"],
        env, port, cwd=tmp_path,
    )
    try:
        await server.wait_ready(60)
        async with aiohttp.ClientSession() as session:
            token = await register_and_login(session, server.url, "ann@example.com")
            async with session.get(server.url + "/api/chats",
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200
        assert (tmp_path / "data" / "gust.db").is_file()
    finally:
        if server.proc.poll() is None:
            server.signal(signal.SIGTERM)
            await server.wait_exit(40)
        server.kill()


# -- backend/test_api.sh ------------------------------------------------------------------
def _smoke(url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "backend" / "test_api.sh"), url],
                          env={**subprocess_env({}), **env}, capture_output=True, text=True, timeout=120)


async def test_smoke_script_never_takes_the_first_account(served: tuple[ServerProcess, Path]) -> None:
    server, data = served
    account = {"GUST_EMAIL": "operator@example.com", "GUST_PASSWORD": "operator password 1"}
    # A fresh server: the script creates nothing, with or without an account given...
    anonymous = await asyncio.to_thread(_smoke, server.url)
    assert anonymous.returncode == 1
    assert "has no account yet" in anonymous.stderr and "users create --admin" in anonymous.stderr
    given = await asyncio.to_thread(_smoke, server.url, **account)
    assert given.returncode == 1
    assert "POST /api/auth/login answered 401" in given.stderr
    assert "register" not in given.stdout
    # ...so the operator makes the admin from the command line, and the script signs in.
    made = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "gust", "users", "create", "operator@example.com", "--admin"],
        input="operator password 1\n", env=subprocess_env({"DATA_DIR": str(data)}), cwd=ROOT,
        capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    first = await asyncio.to_thread(_smoke, server.url, **account)
    assert first.returncode == 0, first.stdout + first.stderr
    for step in ("GET /health: ok", "GET /health/ready: ok",
                 "using the existing account operator@example.com",
                 "POST /api/auth/login", "POST /api/chats: created chat", "GET /api/chats: lists chat",
                 "all checks passed"):
        assert step in first.stdout, first.stdout
    assert "POST /api/auth/register" not in first.stdout
    # Registration needs an invite once an account exists: the script says what to set.
    anonymous = await asyncio.to_thread(_smoke, server.url)
    assert anonymous.returncode == 1
    assert "set GUST_EMAIL and GUST_PASSWORD" in anonymous.stderr


async def test_smoke_script_registers_a_throwaway_account_only_where_registration_is_open(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    running = await start_app(make_settings(tmp_path / "data", registration="open"))
    try:
        fresh = await asyncio.to_thread(_smoke, running.url)
        assert fresh.returncode == 1 and "has no account yet" in fresh.stderr
        await register_and_login(http, running.url, "admin@example.com")
        result = await asyncio.to_thread(_smoke, running.url)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "created the throwaway user smoke-" in result.stdout
        assert "all checks passed" in result.stdout
    finally:
        await running.stop()


def test_smoke_script_fails_clearly_without_a_server() -> None:
    result = _smoke(f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    assert "FAIL  GET /health answered 000 (is the server running at" in result.stderr
