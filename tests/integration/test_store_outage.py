"""Store outages on a real MongoDB-protocol server (FerretDB) of the test's own, which it
kills, restarts and pauses under a real `python -m gust serve`.

Each outage is explicit: 503 + Retry-After (never 500), an answer that finished during it
is stored once the store is back (the client's final text is the stored text), the
process answers normally afterwards (no wedge), starts while the store is down, exits on
SIGTERM although the store hangs, and reports a hung store call on /health.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gust.adapters.store.mongo import MongoStore
from tests.streaming.helpers import deltas
from tests.support.app_server import ServerProcess
from tests.support.env import free_port
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.ferretdb import FerretDB
from tests.support.sse import read_events
from tests.support.wait import until

SECRET = "store-outage-secret-key-0123456789-abcdefghij"


@pytest.fixture
async def ferret(tmp_path: Path) -> AsyncIterator[FerretDB]:
    server = FerretDB.from_env(tmp_path / "ferret")
    try:
        yield server
    finally:
        server.kill()


def gust(tmp_path: Path, ferret: FerretDB, upstream: FakeUpstream, **extra: str) -> ServerProcess:
    env = {
        "DATA_DIR": str(tmp_path / "data"),
        "MONGODB_URI": ferret.uri,
        "MODELS_FILE": str(upstream.models_file(tmp_path)),
        "AUTH_SECRET_KEY": SECRET,
        "CHECKPOINT_INTERVAL": "0.05",
        "LOCAL_MODEL": "false",
        "REGISTRATION": "open",
        "GENERATE_TITLES": "false",
        "RATE_LIMIT_MESSAGES_PER_MINUTE": "0",
        "RATE_LIMIT_LOGIN_PER_MINUTE": "0",
        "MONGODB_TIMEOUT_MS": "1500",
        **extra,
    }
    return ServerProcess.gust(env, free_port())


async def login(http: aiohttp.ClientSession, url: str, email: str) -> dict[str, str]:
    body = {"email": email, "password": "correct horse 1"}
    async with http.post(url + "/api/auth/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
    async with http.post(url + "/api/auth/login", json=body) as resp:
        assert resp.status == 200, await resp.text()
        token = (await resp.json())["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def assert_store_unavailable(resp: aiohttp.ClientResponse) -> None:
    assert resp.status == 503, (resp.status, await resp.text())
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == "store_unavailable"


async def ready(http: aiohttp.ClientSession, url: str) -> bool:
    async with http.get(url + "/health/ready") as resp:
        return resp.status == 200


async def test_sends_during_an_outage_answer_503_then_the_process_answers_again(
    tmp_path: Path, ferret: FerretDB, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    upstream.script = Script(tokens=["fine ", "again"])
    await ferret.start()
    proc = gust(tmp_path, ferret, upstream)
    try:
        await proc.wait_ready()
        auth = await login(http, proc.url, "outage@example.com")
        ferret.kill()
        statuses: list[int] = []
        for attempt in range(6):  # the store stays down while these run (several seconds)
            if attempt % 2:
                request = http.post(proc.url + "/chat/stream", json={"message": f"{attempt}"}, headers=auth)
            else:
                request = http.get(proc.url + "/api/chats", headers=auth)
            async with request as resp:
                statuses.append(resp.status)
                await assert_store_unavailable(resp)
        async with http.get(proc.url + "/health") as resp:
            assert resp.status == 200  # a store outage is not a reason to restart the process
        assert not await ready(http, proc.url)

        await ferret.start()
        assert await until(lambda: ready(http, proc.url), timeout=60), proc.log()
        async with http.post(proc.url + "/chat/stream", json={"message": "after"}, headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            events = await read_events(resp)
        assert events[-1].event == "done" and events[-1].data["status"] == "complete"
        assert deltas(events) == "fine again"
        assert "Traceback" not in proc.log()
        assert statuses == [503] * 6
    finally:
        proc.kill()


async def test_an_answer_finishing_during_an_outage_is_stored_complete_once_the_store_is_back(
    tmp_path: Path, ferret: FerretDB, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    tokens = [f"w{i} " for i in range(60)]
    upstream.script = Script(tokens=tokens, delay=0.03)
    await ferret.start()
    proc = gust(tmp_path, ferret, upstream)
    try:
        await proc.wait_ready()
        auth = await login(http, proc.url, "final@example.com")
        async with http.post(proc.url + "/chat/stream", json={"message": "go"}, headers=auth) as resp:
            head = await read_events(resp, stop_after=5)
            ferret.kill()
            rest = asyncio.ensure_future(read_events(resp))
            # The upstream finishes its answer while the store is down...
            assert await until(lambda: upstream.completed == 1, timeout=30)
            # ...and the final write fails (the process says so, and keeps retrying).
            failed = "storing its final answer failed"
            assert await until(lambda: failed in proc.log(), timeout=30), proc.log()
            assert not rest.done(), "the client was told the answer ended although it is not stored"
            await ferret.start()
            tail = await asyncio.wait_for(rest, 120)
        events = head + tail
        done = events[-1]
        assert done.event == "done" and done.data["status"] == "complete", events[-3:]
        assert any(e.event == "status" and e.data.get("stage") == "store" for e in events)
        chat_id, message_id = events[0].data["chat_id"], events[0].data["message_id"]
        async with http.get(proc.url + f"/api/chats/{chat_id}", headers=auth) as resp:
            assert resp.status == 200, await resp.text()
            chat = await resp.json()
        answer = next(m for m in chat["messages"] if m["id"] == message_id)
        assert answer["status"] == "complete"
        assert answer["content"] == deltas(events) == "".join(tokens)
        assert "final answer stored after" in proc.log()
    finally:
        proc.kill()


async def test_start_up_listens_while_the_store_is_down_and_is_ready_once_it_answers(
    tmp_path: Path, ferret: FerretDB, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    proc = gust(tmp_path, ferret, upstream)  # FerretDB is not running yet
    try:
        await proc.wait_ready()  # GET /health answers 200
        assert not await ready(http, proc.url)
        body = {"email": "early@example.com", "password": "correct horse 1"}
        async with http.post(proc.url + "/api/auth/register", json=body) as resp:
            await assert_store_unavailable(resp)
        log = proc.log()
        # Listening came first; the store was found down afterwards.
        assert log.index("serving on") < log.index("MongoDB unreachable at start-up"), log

        await ferret.start()
        assert await until(lambda: ready(http, proc.url), timeout=60), proc.log()
        await login(http, proc.url, "early@example.com")
    finally:
        proc.kill()


async def test_sigterm_exits_although_the_store_hangs(
    tmp_path: Path, ferret: FerretDB, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    await ferret.start()
    # Store calls that would wait a minute: only the shutdown deadline can end them.
    proc = gust(tmp_path, ferret, upstream, MONGODB_TIMEOUT_MS="60000", SHUTDOWN_TIMEOUT="2",
                SHUTDOWN_FORCE_AFTER="2")
    try:
        await proc.wait_ready()
        auth = await login(http, proc.url, "term@example.com")
        ferret.pause()
        hung = [asyncio.ensure_future(http.get(proc.url + "/api/chats", headers=auth)) for _ in range(3)]
        await asyncio.sleep(0.5)  # let them reach the store (ordering only)
        proc.signal(signal.SIGTERM)
        # SHUTDOWN_TIMEOUT + SHUTDOWN_FORCE_AFTER, and a margin for a loaded machine.
        code = await proc.wait_exit(20)
        assert code in (0, 1), proc.log()
        for request in hung:
            with contextlib.suppress(aiohttp.ClientError):
                (await request).release()
    finally:
        ferret.resume()
        proc.kill()


async def test_sigterm_with_a_hung_store_ends_gracefully_with_each_close_step_bounded(
    tmp_path: Path, ferret: FerretDB, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    """Requests, close steps (store, indexer, error log...) and open connections all wait on
    a store that never answers: each is cut at its share of the deadline, so the process
    exits by itself (0), not by the force-exit timer (1), and names what it left behind."""
    await ferret.start()
    proc = gust(tmp_path, ferret, upstream, MONGODB_TIMEOUT_MS="60000", SHUTDOWN_TIMEOUT="1",
                SHUTDOWN_FORCE_AFTER="4", WATCHDOG_STUCK_STORE_S="0.5", SEARCH_INDEX_INTERVAL="0.2")
    try:
        await proc.wait_ready()
        auth = await login(http, proc.url, "bounded@example.com")
        async with http.post(proc.url + "/api/chats", json={"title": "t"}, headers=auth) as resp:
            assert resp.status == 201, await resp.text()  # the indexer has work, sessions exist
        ferret.pause()  # connections stay open, nothing answers: calls hang
        hung = [asyncio.ensure_future(http.get(proc.url + "/api/chats", headers=auth)) for _ in range(3)]

        async def store_call_hangs() -> bool:
            async with http.get(proc.url + "/health") as resp:
                return resp.status == 503

        assert await until(store_call_hangs, timeout=30)
        proc.signal(signal.SIGTERM)
        code = await proc.wait_exit(30)
        assert code == 0, proc.log()
        log = proc.log()
        assert "stopped" in log, log
        # What was cut off is named: a close step, or the requests hung on the store.
        assert "did not finish within" in log or "connections still busy" in log, log
        for request in hung:
            with contextlib.suppress(aiohttp.ClientError):
                (await request).release()
    finally:
        ferret.resume()
        proc.kill()


async def test_a_hung_store_call_makes_liveness_fail_until_the_store_answers(
    tmp_path: Path, ferret: FerretDB, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    await ferret.start()
    proc = gust(tmp_path, ferret, upstream, MONGODB_TIMEOUT_MS="60000", WATCHDOG_STUCK_STORE_S="1")
    try:
        await proc.wait_ready()
        auth = await login(http, proc.url, "stuck@example.com")
        ferret.pause()  # connections stay open, nothing answers: calls hang
        hung = asyncio.ensure_future(http.get(proc.url + "/api/chats", headers=auth))
        seen: dict[str, Any] = {}

        async def unhealthy() -> bool:
            async with http.get(proc.url + "/health") as resp:
                seen.update(await resp.json())
                return resp.status == 503

        assert await until(unhealthy, timeout=30), seen
        assert seen["status"] == "unhealthy"
        assert any("store call" in problem for problem in seen["problems"]), seen

        ferret.resume()
        async with await asyncio.wait_for(hung, 60) as resp:
            assert resp.status == 200, await resp.text()

        async def healthy() -> bool:
            async with http.get(proc.url + "/health") as resp:
                return resp.status == 200

        assert await until(healthy, timeout=30)
    finally:
        ferret.resume()
        proc.kill()


async def test_store_calls_cancelled_twice_in_server_selection_do_not_wedge_the_client(
    tmp_path: Path, ferret: FerretDB
) -> None:
    """The wedge: tasks cancelled (by a timeout, then again by a stop or a shutdown) while
    PyMongo selects a server during an outage left its topology lock held for good."""
    await ferret.start()
    store = MongoStore(ferret.uri, "wedge", timeout_ms=3000, start_timeout=5)
    await store.start()
    stop = asyncio.Event()
    rng = random.Random(17)

    async def caller() -> None:
        while not stop.is_set():
            call = asyncio.ensure_future(store.get_chat("user", "chat"))
            done, _ = await asyncio.wait([call], timeout=rng.uniform(0.05, 1.0))
            if not done:
                call.cancel()
                for _ in range(rng.randint(0, 3)):
                    await asyncio.sleep(0)
                call.cancel()
            # StoreUnavailable after the fix; before it, also RuntimeError from the lock.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await call
            await asyncio.sleep(rng.uniform(0, 0.05))

    callers = [asyncio.ensure_future(caller()) for _ in range(100)]
    try:
        for _ in range(3):
            await asyncio.sleep(1)
            ferret.kill()
            await asyncio.sleep(4)
            await ferret.start()
        stop.set()
        await asyncio.wait_for(asyncio.gather(*callers), 30)
        # Once the server is back, a plain call answers (the wedge made it wait forever).
        assert await asyncio.wait_for(store.get_chat("user", "chat"), 20) is None
    finally:
        stop.set()
        for task in callers:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(store.close(), 10)
