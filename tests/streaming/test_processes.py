"""Real server processes: SIGKILL and SIGTERM mid-stream, and two processes sharing Redis."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.streaming.helpers import deltas
from tests.support.app_server import ServerProcess
from tests.support.env import free_port, require_env
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.sse import read_events
from tests.support.wait import until

SECRET = "process-test-secret-key-0123456789-abcdefghij"


def server_env(data_dir: Path, upstream: FakeUpstream, **extra: str) -> dict[str, str]:
    return {
        "DATA_DIR": str(data_dir),
        "MODELS_FILE": str(upstream.models_file(data_dir.parent)),
        "AUTH_SECRET_KEY": SECRET,
        "CHECKPOINT_INTERVAL": "0.05",
        "LOCAL_MODEL": "false",
        "REGISTRATION": "open",
        **extra,
    }


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def login(http: aiohttp.ClientSession, url: str, email: str, register: bool = True) -> dict[str, str]:
    body = {"email": email, "password": "correct horse 1"}
    if register:
        async with http.post(url + "/api/auth/register", json=body) as resp:
            assert resp.status == 201, await resp.text()
    async with http.post(url + "/api/auth/login", json=body) as resp:
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def started(proc: ServerProcess) -> ServerProcess:
    await proc.wait_ready()
    return proc


async def test_sigkill_mid_stream_leaves_an_interrupted_message_with_checkpointed_text(
    tmp_path: Path, upstream: FakeUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.script = Script(tokens=[f"k{i} " for i in range(500)], delay=0.02)
    data = tmp_path / "data"
    env = server_env(data, upstream)
    first = await started(ServerProcess.gust(env, free_port()))
    try:
        auth = await login(session, first.url, "k@example.com")
        async with session.post(first.url + "/chat/stream", json={"message": "go"}, headers=auth) as resp:
            events = await read_events(resp, stop_after=15)
            chat_id, message_id = events[0].data["chat_id"], events[0].data["message_id"]
            seen = deltas(events)

            async def checkpointed() -> bool:
                """The stored answer already holds everything the client saw."""
                async with session.get(first.url + f"/api/chats/{chat_id}", headers=auth) as got:
                    chat = await got.json()
                stored = next((m for m in chat["messages"] if m["id"] == message_id), None)
                return stored is not None and str(stored["content"]).startswith(seen)

            assert await until(checkpointed, timeout=10), "no checkpoint covers what the client saw"
            first.signal(signal.SIGKILL)
        await first.wait_exit()
    finally:
        first.kill()
    second = await started(ServerProcess.gust(env, free_port()))
    try:
        answer: dict[str, Any] = {}

        async def recovered() -> bool:
            # The process listens first; its recovery of unfinished answers runs in the
            # background once the store answers.
            nonlocal answer
            async with session.get(second.url + f"/api/chats/{chat_id}", headers=auth) as resp:
                chat = await resp.json()
            answer = next(m for m in chat["messages"] if m["id"] == message_id)
            return bool(answer["status"] != "streaming")

        assert await until(recovered, timeout=30), answer
        assert answer["status"] == "interrupted"
        full = "".join(f"k{i} " for i in range(500))
        # The last checkpoint's text: everything seen before the kill, and a prefix of the answer.
        assert answer["content"].startswith(deltas(events)) and full.startswith(answer["content"])
    finally:
        second.signal(signal.SIGTERM)
        await second.wait_exit()
        second.kill()


async def test_sigterm_lets_a_short_answer_finish(
    tmp_path: Path, upstream: FakeUpstream, session: aiohttp.ClientSession
) -> None:
    tokens = [f"s{i} " for i in range(30)]
    upstream.script = Script(tokens=tokens, delay=0.02)
    proc = await started(
        ServerProcess.gust(server_env(tmp_path / "data", upstream, SHUTDOWN_TIMEOUT="10"), free_port())
    )
    try:
        auth = await login(session, proc.url, "t@example.com")
        async with session.post(proc.url + "/chat/stream", json={"message": "go"}, headers=auth) as resp:
            head = await read_events(resp, stop_after=3)
            proc.signal(signal.SIGTERM)
            tail = await read_events(resp)
        events = head + tail
        assert events[-1].event == "done" and events[-1].data["status"] == "complete"
        assert deltas(events) == "".join(tokens)
        assert await proc.wait_exit() == 0
    finally:
        proc.kill()


async def test_sigterm_past_the_drain_timeout_interrupts_with_a_retryable_error(
    tmp_path: Path, upstream: FakeUpstream, session: aiohttp.ClientSession
) -> None:
    upstream.script = Script(tokens=[f"l{i} " for i in range(1000)], delay=0.02)
    data = tmp_path / "data"
    env = server_env(data, upstream, SHUTDOWN_TIMEOUT="0.5")
    proc = await started(ServerProcess.gust(env, free_port()))
    try:
        auth = await login(session, proc.url, "l@example.com")
        async with session.post(proc.url + "/chat/stream", json={"message": "go"}, headers=auth) as resp:
            head = await read_events(resp, stop_after=5)
            proc.signal(signal.SIGTERM)
            tail = await read_events(resp)
        events = head + tail
        assert [e.event for e in events[-2:]] == ["error", "done"]
        assert events[-2].data["code"] == "server_shutdown" and events[-2].data["retryable"] is True
        assert events[-1].data["status"] == "interrupted"
        assert await proc.wait_exit() == 0
    finally:
        proc.kill()
    again = await started(ServerProcess.gust(env, free_port()))
    try:
        async with session.get(again.url + f"/api/chats/{events[0].data['chat_id']}", headers=auth) as resp:
            answer = (await resp.json())["messages"][-1]
        assert answer["status"] == "interrupted" and answer["content"] == deltas(events)
    finally:
        again.signal(signal.SIGTERM)
        await again.wait_exit()
        again.kill()


async def test_two_processes_share_streams_through_redis(
    tmp_path: Path, upstream: FakeUpstream, session: aiohttp.ClientSession
) -> None:
    redis_url = require_env("TEST_REDIS_URL", "a Redis server")
    upstream.script = Script(tokens=[f"r{i} " for i in range(400)], delay=0.02)
    env = server_env(tmp_path / "data", upstream, REDIS_URL=redis_url)
    a = await started(ServerProcess.gust(env, free_port()))
    b = await started(ServerProcess.gust(env, free_port()))
    try:
        auth = await login(session, a.url, "r@example.com")
        async with session.post(a.url + "/api/chats", json={}, headers=auth) as resp:
            chat_id = (await resp.json())["id"]
        async with session.post(
            a.url + f"/api/chats/{chat_id}/messages", json={"message": "go"}, headers=auth
        ) as resp:
            assert resp.status == 202
            message_id = (await resp.json())["message_id"]
        # Follow on B, drop, resume on B with Last-Event-ID, then stop through B.
        async with session.get(b.url + f"/api/chats/{chat_id}/events", headers=auth) as resp:
            head = await read_events(resp, stop_after=8)
        assert head[0].event == "start" and head[0].data["message_id"] == message_id
        resume = {**auth, "Last-Event-ID": head[-1].id or ""}
        async with session.get(b.url + f"/api/chats/{chat_id}/events", headers=resume) as resp:
            more = await read_events(resp, stop_after=5)
            async with session.post(b.url + f"/api/chats/{chat_id}/stop", headers=auth) as stop:
                assert (await stop.json())["stopped"] is True
            tail = await read_events(resp)
        events = head + more + tail
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1))
        assert events[-1].event == "done" and events[-1].data["status"] == "stopped"
        async with session.get(a.url + f"/api/chats/{chat_id}", headers=auth) as resp:
            answer = (await resp.json())["messages"][-1]
        assert answer["status"] == "stopped" and answer["content"] == deltas(events)
    finally:
        for proc in (a, b):
            proc.signal(signal.SIGTERM)
        for proc in (a, b):
            await proc.wait_exit()
            proc.kill()


async def test_stream_body_is_json_with_curl_style_client(
    tmp_path: Path, upstream: FakeUpstream, session: aiohttp.ClientSession
) -> None:
    """The NDJSON variant over a real process, as a program would read it."""
    proc = await started(ServerProcess.gust(server_env(tmp_path / "data", upstream), free_port()))
    try:
        auth = await login(session, proc.url, "n@example.com")
        headers = {**auth, "Accept": "application/x-ndjson"}
        async with session.post(proc.url + "/chat/stream", json={"message": "hi"}, headers=headers) as resp:
            lines = [json.loads(x) for x in (await resp.text()).splitlines()]
        assert lines[0]["type"] == "start" and lines[-1]["type"] == "done"
    finally:
        proc.signal(signal.SIGTERM)
        await proc.wait_exit()
        proc.kill()
