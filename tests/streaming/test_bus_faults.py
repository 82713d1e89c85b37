"""Two Gust processes sharing Redis and one store, with faults: long silences, kill -9, Redis restarts.

Every stream must end with `done`, and what a client ends up showing (deltas appended,
a `resync` replacing everything) must be the stored text.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.streaming.helpers import deltas
from tests.streaming.test_processes import login, server_env, started
from tests.support.app_server import ServerProcess
from tests.support.backends import Backend
from tests.support.env import free_port, require_env
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.redis_server import RedisServer
from tests.support.sse import SSEEvent, read_events
from tests.support.wait import until

TOKENS = [f"w{i} " for i in range(2000)]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        yield http


def shown(events: list[SSEEvent]) -> str:
    """The text a client shows after these events: deltas appended, a resync replaces it all."""
    text = ""
    for event in events:
        if event.event == "delta":
            text += event.data["delta"]
        elif event.event == "resync":
            text = event.data["content"]
    return text


async def stop_all(*procs: ServerProcess) -> None:
    for proc in procs:
        if proc.proc.poll() is None:
            proc.signal(signal.SIGTERM)
    for proc in procs:
        if proc.proc.poll() is None:
            await proc.wait_exit()
        proc.kill()


async def send(session: aiohttp.ClientSession, url: str, auth: dict[str, str], chat_id: str) -> str:
    async with session.post(
        url + f"/api/chats/{chat_id}/messages", json={"message": "go"}, headers=auth
    ) as resp:
        assert resp.status == 202, await resp.text()
        message_id: str = (await resp.json())["message_id"]
        return message_id


async def new_chat(session: aiohttp.ClientSession, url: str, auth: dict[str, str]) -> str:
    async with session.post(url + "/api/chats", json={}, headers=auth) as resp:
        chat_id: str = (await resp.json())["id"]
        return chat_id


async def stored(
    session: aiohttp.ClientSession, url: str, auth: dict[str, str], chat_id: str, message_id: str
) -> dict[str, Any]:
    async with session.get(url + f"/api/chats/{chat_id}/messages", headers=auth) as resp:
        assert resp.status == 200, await resp.text()
        items: list[dict[str, Any]] = (await resp.json())["items"]
    return next(m for m in items if m["id"] == message_id)


async def test_a_follower_on_another_process_gets_an_answer_after_a_long_silence(
    tmp_path: Path, upstream: FakeUpstream, session: aiohttp.ClientSession
) -> None:
    redis_url = require_env("TEST_REDIS_URL", "a Redis server")
    tokens = ["after ", "a ", "long ", "silence"]
    # Longer than redis-py's default 5 s socket timeout; the ping interval stays at its 15 s.
    upstream.script = Script(tokens=tokens, first_token_delay=7)
    env = server_env(tmp_path / "data", upstream, REDIS_URL=redis_url)
    a = await started(ServerProcess.gust(env, free_port()))
    b = await started(ServerProcess.gust(env, free_port()))
    try:
        auth = await login(session, a.url, "silence@example.com")
        chat_id = await new_chat(session, a.url, auth)
        message_id = await send(session, a.url, auth, chat_id)
        async with session.get(b.url + f"/api/chats/{chat_id}/events", headers=auth) as resp:
            assert resp.status == 200
            events = await read_events(resp)
        assert events[0].event == "start" and events[-1].event == "done"
        assert events[-1].data["status"] == "complete" and deltas(events) == "".join(tokens)
        assert (await stored(session, a.url, auth, chat_id, message_id))["content"] == "".join(tokens)
    finally:
        await stop_all(a, b)


@pytest.mark.both_stores
async def test_kill_9_of_the_answering_process_ends_every_follower_with_the_stored_text(
    tmp_path: Path, upstream: FakeUpstream, session: aiohttp.ClientSession, backend: Backend
) -> None:
    redis_url = require_env("TEST_REDIS_URL", "a Redis server")
    upstream.script = Script(tokens=TOKENS, delay=0.02)
    extra = {"REDIS_URL": redis_url, "GENERATION_OWNER_TIMEOUT": "6", **backend.env()}
    env = server_env(tmp_path / "data", upstream, **extra)
    a = await started(ServerProcess.gust(env, free_port()))
    b = await started(ServerProcess.gust(env, free_port()))
    try:
        auth = await login(session, a.url, "kill@example.com")
        chat_id = await new_chat(session, a.url, auth)
        message_id = await send(session, a.url, auth, chat_id)
        events_url = b.url + f"/api/chats/{chat_id}/events"
        async with session.get(events_url, headers=auth) as follower:
            head = await read_events(follower, stop_after=30)
            a.signal(signal.SIGKILL)
            await a.wait_exit()
            # A resume (on the surviving process) after the owner died: 200, then the ending.
            resume = {**auth, "Last-Event-ID": head[9].id or ""}
            async with session.get(events_url, headers=resume) as resumed:
                assert resumed.status == 200
                rest = await asyncio.wait_for(read_events(resumed), 60)
            tail = await asyncio.wait_for(read_events(follower), 60)
        message = await stored(session, b.url, auth, chat_id, message_id)
        assert message["status"] == "interrupted"
        assert message["error"]["code"] == "owner_lost" and message["error"]["retryable"] is True
        # The last checkpoint (it may lag what followers saw: a crash loses that much), and the
        # followers end with exactly it.
        assert message["content"] and "".join(TOKENS).startswith(message["content"])
        for events in (head + tail, head[:10] + rest):
            assert [e.event for e in events[-3:]] == ["resync", "error", "done"]
            assert events[-2].data["code"] == "owner_lost" and events[-2].data["retryable"] is True
            assert events[-1].data["status"] == "interrupted"
            assert shown(events) == message["content"]
        # Later resumes, from any process, answer from what is left: never a 500.
        async with session.get(events_url, headers=resume) as again:
            assert again.status == 200
            late = await read_events(again)
        assert late[-1].event == "done" and late[-1].data["status"] == "interrupted"
        assert shown(head[:10] + late) == message["content"]
    finally:
        await stop_all(a, b)


async def test_a_redis_restart_mid_stream_leaves_no_gap_and_stop_works_afterwards(
    tmp_path: Path, upstream: FakeUpstream, session: aiohttp.ClientSession
) -> None:
    redis = RedisServer.from_env(tmp_path / "redis")
    await redis.start()
    tokens = TOKENS[:1000]
    upstream.script = Script(tokens=tokens, delay=0.02)
    env = server_env(tmp_path / "data", upstream, REDIS_URL=redis.url, GENERATION_OWNER_TIMEOUT="9")
    a = await started(ServerProcess.gust(env, free_port()))
    b = await started(ServerProcess.gust(env, free_port()))
    try:
        auth = await login(session, a.url, "restart@example.com")
        chat_id = await new_chat(session, a.url, auth)
        message_id = await send(session, a.url, auth, chat_id)
        events_url = b.url + f"/api/chats/{chat_id}/events"
        async with session.get(events_url, headers=auth) as follower:
            head = await read_events(follower, stop_after=30)
            before = len((await stored(session, a.url, auth, chat_id, message_id))["content"])
            redis.stop()

            async def answer_went_on() -> bool:  # the outage lasts while A keeps answering
                return (
                    len((await stored(session, a.url, auth, chat_id, message_id))["content"]) > before + 1200
                )

            assert await until(answer_went_on, timeout=30, interval=0.1)
            # A resume while Redis is down: 200 at once, the events once it is back.
            during = await session.get(events_url, headers={**auth, "Last-Event-ID": head[19].id or ""})
            assert during.status == 200
            await redis.start()
            tail = await asyncio.wait_for(read_events(follower), 90)
            async with during:
                resumed = await asyncio.wait_for(read_events(during), 60)
        message = await stored(session, a.url, auth, chat_id, message_id)
        events = head + tail
        assert events[-1].event == "done" and events[-1].data["status"] == "complete"
        assert message["status"] == "complete" and message["content"] == "".join(tokens)
        assert shown(events) == message["content"]
        # The owner survived: it published its whole log again, so the follower needed no resync.
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert "resync" not in {e.event for e in events}
        assert resumed[-1].event == "done" and shown(head[:20] + resumed) == message["content"]
        # A resume from before the outage, on either process, continues without a gap.
        for url in (a.url, b.url):
            resume = {**auth, "Last-Event-ID": head[9].id or ""}
            async with session.get(url + f"/api/chats/{chat_id}/events", headers=resume) as resp:
                assert resp.status == 200
                rest = await asyncio.wait_for(read_events(resp), 30)
            assert rest[-1].event == "done" and rest[-1].data["status"] == "complete"
            assert shown(head[:10] + rest) == message["content"]
        # Stop still travels from B to A after the restart.
        second = await send(session, a.url, auth, chat_id)
        async with session.get(events_url, headers=auth) as resp:
            first = await read_events(resp, stop_after=5)
            assert first[0].data["message_id"] == second
            async with session.post(b.url + f"/api/chats/{chat_id}/stop", headers=auth) as stop:
                assert (await stop.json())["stopped"] is True
            ending = await asyncio.wait_for(read_events(resp), 30)
        assert ending[-1].event == "done" and ending[-1].data["status"] == "stopped"
        assert (await stored(session, a.url, auth, chat_id, second))["status"] == "stopped"
    finally:
        await stop_all(a, b)
        redis.stop()
    for proc in (a, b):
        log = proc.log_path.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
        assert log.count("redis bus unreachable") <= 2, log[-3000:]
