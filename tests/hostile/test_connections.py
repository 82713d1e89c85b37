"""Slow, idle and numerous connections: headers and bodies must arrive in time, one address
can be capped, and running out of file descriptors neither kills the server nor floods its log."""

from __future__ import annotations

import asyncio
import resource
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gust.http_server import GustHTTPServer
from tests.support.app_server import ROOT, RunningApp, ServerProcess, make_settings, start_app
from tests.support.env import free_port
from tests.support.wait import until

GET = b"GET /health HTTP/1.1\r\nHost: gust\r\n\r\n"


@pytest.fixture
async def strict(data_dir: Path) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(data_dir, http_idle_timeout=0.5, http_body_timeout=0.5,
                                            max_connections_per_address=3))
    yield running
    await running.stop()


def port_of(app: RunningApp) -> int:
    return int(app.url.rsplit(":", 1)[1])


async def closed_by_server(reader: asyncio.StreamReader, within: float = 15.0) -> bool:
    """Whether the server ends the connection (EOF, or a reset) within `within` seconds."""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), within)
            if not data:
                return True
    except TimeoutError:
        return False
    except ConnectionError:
        return True


async def test_a_client_that_sends_nothing_is_let_go(strict: RunningApp) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(strict))
    assert await closed_by_server(reader)
    writer.close()


async def test_slowloris_headers_are_let_go(strict: RunningApp) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(strict))
    writer.write(b"GET /health HTTP/1.1\r\nHost: gust\r\n")
    closed = asyncio.ensure_future(closed_by_server(reader))
    try:
        for i in range(400):  # a header line now and then, never the blank line that ends them
            if closed.done():
                break
            writer.write(f"X-Slow-{i}: x\r\n".encode())
            await writer.drain()
            await asyncio.sleep(0.05)  # the attacker's pace, not a wait for the server
    except ConnectionError:
        pass
    assert await closed
    writer.close()


async def test_a_body_that_never_finishes_is_let_go(strict: RunningApp) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(strict))
    writer.write(b"POST /api/auth/login HTTP/1.1\r\nHost: gust\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"email\":")
    await writer.drain()
    assert await closed_by_server(reader)
    writer.close()


async def test_an_idle_kept_alive_connection_is_let_go(strict: RunningApp) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port_of(strict))
    writer.write(GET)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 200")
    assert await closed_by_server(reader)
    writer.close()


async def test_connections_per_address_are_capped(data_dir: Path) -> None:
    app = await start_app(make_settings(data_dir, max_connections_per_address=3))
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    try:
        for _ in range(3):  # three kept-alive connections, each answered
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(app))
            writer.write(GET)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200")
            opened.append((reader, writer))
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(app))
        writer.write(GET)
        assert await closed_by_server(reader), "the fourth connection of one address was served"
        writer.close()
        # One of the three closes: its place is free again.
        opened.pop()[1].close()
        server = app.server
        assert isinstance(server, GustHTTPServer)
        assert await until(lambda: sum(server.open_per_address.values()) == 2, timeout=10)
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(app))
        writer.write(GET)
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        for _, w in opened:
            w.close()
        await app.stop()


FD_LIMIT = 60
FEW_FILES = f"import resource, sys\nresource.setrlimit(resource.RLIMIT_NOFILE, ({FD_LIMIT}, {FD_LIMIT}))\n"
SERVE = FEW_FILES + "from gust.__main__ import cli\nsys.exit(cli(['serve']))\n"
GUNICORN = FEW_FILES + "from gunicorn.app.wsgiapp import run\nsys.argv = ['gunicorn', *sys.argv[1:]]\nrun()\n"


@pytest.mark.parametrize("how", ["serve", "gunicorn"])
async def test_running_out_of_file_descriptors_logs_a_few_lines(tmp_path: Path, how: str) -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert soft > 4 * FD_LIMIT, "this test process needs more files than the server it starves"
    port = free_port()
    env = {"DATA_DIR": str(tmp_path / "data"), "LOCAL_MODEL": "false", "PORT": str(port),
           "HOST": "127.0.0.1", "BCRYPT_ROUNDS": "4", "AUTH_SECRET_KEY": "x" * 40}
    if how == "serve":
        args = [sys.executable, "-c", SERVE]
    else:
        args = [sys.executable, "-c", GUNICORN, "-k", "tornado", "-w", "1", "-b", f"127.0.0.1:{port}",
                "--control-socket", str(tmp_path / "gunicorn.ctl"), "gust.wsgi:application"]
    server = ServerProcess(args, env, port, cwd=ROOT)
    flood: list[asyncio.StreamWriter] = []
    async def ready() -> bool:  # /health answers before the services (and their files) exist
        try:
            async with aiohttp.ClientSession() as http, http.get(server.url + "/health/ready") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    try:
        await server.wait_ready(60)
        assert await until(ready, timeout=60, interval=0.2), server.log()
        for _ in range(2 * FD_LIMIT):  # more connections than the server has descriptors for
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            flood.append(writer)
        assert await until(lambda: "accepting connections fails" in server.log(), timeout=15), server.log()
        for writer in flood:
            writer.close()
        flood.clear()

        async def healthy() -> bool:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(GET)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
                writer.close()
                return head.startswith(b"HTTP/1.1 200")
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                return False

        assert await until(healthy, timeout=30, interval=0.2), server.log()
        log = server.log()
        assert log.count("accepting connections fails") <= 3, log[-3000:]
        assert "Traceback" not in log and "Exception in callback" not in log, log[-3000:]
    finally:
        for writer in flood:
            writer.close()
        if server.proc.poll() is None:
            server.signal(signal.SIGTERM)
            await server.wait_exit()
        server.kill()


async def test_gunicorn_workers_let_idle_clients_go(tmp_path: Path) -> None:
    port = free_port()
    env = {"DATA_DIR": str(tmp_path / "data"), "LOCAL_MODEL": "false", "HTTP_IDLE_TIMEOUT": "0.5"}
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    server = ServerProcess([gunicorn, "-k", "tornado", "-w", "1", "-b", f"127.0.0.1:{port}",
                            "--control-socket", str(tmp_path / "gunicorn.ctl"), "gust.wsgi:application"],
                           env, port, cwd=ROOT)
    try:
        await server.wait_ready(60)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await closed_by_server(reader), server.log()
        writer.close()
    finally:
        server.signal(signal.SIGTERM)
        await server.wait_exit()
        server.kill()
