"""The Bus contract: in-process and Redis Streams adapters behave the same."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from gust.adapters.bus.memory import MemoryBus
from gust.adapters.bus.redis_streams import RedisBus
from gust.ports.bus import Bus
from tests.support.env import require_env


@pytest.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "memory":
        adapter: Bus = MemoryBus()
    else:
        adapter = RedisBus(require_env("TEST_REDIS_URL", "a Redis server"))
    await adapter.start()
    yield adapter
    await adapter.close()


def gid() -> str:
    return "g" + uuid.uuid4().hex


async def test_publish_then_read_after(bus: Bus) -> None:
    g = gid()
    await bus.publish(g, [(1, {"type": "start"}), (2, {"type": "delta", "delta": "é✓"})])
    await bus.publish(g, [(3, {"type": "done"})])
    assert await bus.read(g, 0, 0.1) == [
        (1, {"type": "start"}),
        (2, {"type": "delta", "delta": "é✓"}),
        (3, {"type": "done"}),
    ]
    assert await bus.read(g, 2, 0.1) == [(3, {"type": "done"})]
    assert await bus.read(g, 3, 0.05) == []
    assert await bus.read(gid(), 0, 0.05) == []


async def test_blocking_read_wakes_on_publish(bus: Bus) -> None:
    g = gid()
    await bus.publish(g, [(1, {"type": "start"})])
    reader = asyncio.ensure_future(bus.read(g, 1, 5))
    await asyncio.sleep(0.05)
    assert not reader.done()
    await bus.publish(g, [(2, {"type": "delta", "delta": "x"})])
    assert await asyncio.wait_for(reader, 5) == [(2, {"type": "delta", "delta": "x"})]


async def test_expire_drops_the_log(bus: Bus) -> None:
    g = gid()
    await bus.publish(g, [(1, {"type": "done"})])
    await bus.expire(g, 1)
    assert await bus.read(g, 0, 0.05) == [(1, {"type": "done"})]
    for _ in range(60):
        if not await bus.read(g, 0, 0.01):
            break
        await asyncio.sleep(0.05)
    assert await bus.read(g, 0, 0.01) == []


async def test_active_marks(bus: Bus) -> None:
    chat = "c" + uuid.uuid4().hex
    assert await bus.get_active(chat) is None
    await bus.set_active(chat, "g1", 30)
    assert await bus.get_active(chat) == "g1"
    await bus.clear_active(chat, "other")  # not the live one: kept
    assert await bus.get_active(chat) == "g1"
    await bus.clear_active(chat, "g1")
    assert await bus.get_active(chat) is None


async def test_stop_requests_reach_listeners(bus: Bus) -> None:
    received: list[str] = []
    got = asyncio.Event()

    async def on_stop(generation_id: str) -> None:
        received.append(generation_id)
        got.set()

    listener = asyncio.ensure_future(bus.listen_stops(on_stop))
    await asyncio.sleep(0.1)  # let the subscription settle
    await bus.request_stop("g-stop")
    await asyncio.wait_for(got.wait(), 5)
    assert received == ["g-stop"]
    listener.cancel()
