"""Requests that arrive while the server shuts down (on connections kept alive from before
SIGTERM) get 503 + Retry-After + Connection: close on every route, never a 500, while the
answer already running ends as the shutdown promises."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp

from tests.streaming.test_processes import login, server_env, started
from tests.support.app_server import ServerProcess
from tests.support.env import free_port
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.sse import read_events
from tests.support.wait import until

ROUTES = [
    ("GET", "/health"),
    ("GET", "/api/chats"),
    ("POST", "/chat/stream"),
    ("GET", "/"),
    ("GET", "/api/docs/assets/swagger-ui.css"),
    ("GET", "/api/openapi.json"),
    ("DELETE", "/no/such/route"),
]


async def test_requests_during_shutdown_get_503_not_500(tmp_path: Path, upstream: FakeUpstream) -> None:
    upstream.script = Script(tokens=[f"t{i} " for i in range(50)], hang_after=3)  # runs until shutdown
    proc = await started(ServerProcess.gust(
        server_env(tmp_path / "data", upstream, SHUTDOWN_TIMEOUT="8"), free_port()))
    # One kept-alive connection per route, opened before SIGTERM (new ones are refused after).
    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for _ in ROUTES]
    try:
        async with aiohttp.ClientSession() as http:
            auth = await login(http, proc.url, "s@example.com")
            for session in sessions:
                async with session.get(proc.url + "/health") as resp:
                    assert resp.status == 200
            async with http.post(proc.url + "/chat/stream", json={"message": "go"}, headers=auth) as stream:
                head = await read_events(stream, stop_after=4)
                proc.signal(signal.SIGTERM)
                assert await until(lambda: "shutting down" in proc.log(), timeout=10), proc.log()
                answers: list[tuple[str, str, int | None, str | None, str | None, str]] = []
                for session, (method, path) in zip(sessions, ROUTES, strict=True):
                    body = {"message": "late"} if method == "POST" else None
                    try:
                        async with session.request(method, proc.url + path, json=body, headers=auth) as resp:
                            answers.append((method, path, resp.status, resp.headers.get("Retry-After"),
                                            resp.headers.get("Connection"), await resp.text()))
                    except aiohttp.ClientError as exc:
                        answers.append((method, path, None, None, None, repr(exc)))
                tail = await read_events(stream)
        assert [a[2] for a in answers] == [503] * len(ROUTES), answers
        for method, path, _, retry_after, connection, text in answers:
            assert retry_after and int(retry_after) >= 1, (method, path)
            assert connection == "close", (method, path)
            assert '"shutting_down"' in text, (method, path, text)
        events = head + tail
        assert events[-1].event == "done" and events[-1].data["status"] == "interrupted"
        assert await proc.wait_exit() == 0
        assert "Traceback" not in proc.log() and " 500 " not in proc.log(), proc.log()
    finally:
        for session in sessions:
            await session.close()
        proc.kill()
