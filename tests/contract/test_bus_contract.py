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
from tests.support.wait import until


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
    await asyncio.sleep(0.05)  # the scenario: time passes with nothing published...
    assert not reader.done()  # ...and the read is still waiting
    await bus.publish(g, [(2, {"type": "delta", "delta": "x"})])
    assert await asyncio.wait_for(reader, 5) == [(2, {"type": "delta", "delta": "x"})]


async def test_expire_drops_the_log(bus: Bus) -> None:
    g = gid()
    await bus.publish(g, [(1, {"type": "done"})])
    await bus.expire(g, 1)
    assert await bus.read(g, 0, 0.05) == [(1, {"type": "done"})]

    async def gone() -> bool:
        return await bus.read(g, 0, 0.01) == []

    assert await until(gone, timeout=5, interval=0.05), "the log outlived its expiry"


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

    async def delivered() -> bool:
        # A request made before the listener has subscribed reaches no one (publish and
        # subscribe): ask again until one arrives, rather than guess when it has subscribed.
        await bus.request_stop("g-stop")
        return got.is_set()

    assert await until(delivered, timeout=5, interval=0.05), "no stop request reached the listener"
    assert received and set(received) == {"g-stop"}
    listener.cancel()


async def test_a_blocking_read_longer_than_the_client_default_timeout_returns_empty(bus: Bus) -> None:
    # redis-py's default socket timeout is 5 s; followers block for the ping interval (15 s).
    g = gid()
    await bus.publish(g, [(1, {"type": "start"})])
    assert await bus.read(g, 1, 6) == []


async def test_publish_skips_what_the_log_has_and_refuses_to_start_mid_log(bus: Bus) -> None:
    g = gid()
    assert await bus.publish(g, [(1, {"type": "start"}), (2, {"type": "delta", "delta": "a"})]) is True
    # A retried batch overlapping the log adds only what is new.
    assert await bus.publish(g, [(2, {"type": "delta", "delta": "a"}), (3, {"type": "done"})]) is True
    assert [seq for seq, _ in await bus.read(g, 0, 0.05)] == [1, 2, 3]
    assert await bus.exists(g) and await bus.last_seq(g) == 3
    # The log is gone (e.g. the server restarted empty): no log starting at seq 5.
    lost = gid()
    assert await bus.publish(lost, [(5, {"type": "delta", "delta": "x"})]) is False
    assert not await bus.exists(lost) and await bus.last_seq(lost) == 0
    assert await bus.read(lost, 0, 0.05) == []


async def test_publish_with_a_ttl_drops_the_log_after_it(bus: Bus) -> None:
    g = gid()
    await bus.publish(g, [(1, {"type": "done"})], 1)

    async def gone() -> bool:
        return not await bus.exists(g)

    assert await until(gone, timeout=5, interval=0.05)


async def test_owner_marks_follow_the_heartbeat(bus: Bus) -> None:
    g, other, chat = gid(), gid(), "c" + uuid.uuid4().hex
    await bus.publish(g, [(1, {"type": "start"})])
    beat = await bus.heartbeat([(g, chat), (other, "c2" + chat)], 1)
    assert beat.lost == {other}  # no log for it: its owner publishes it again
    assert beat.stops == set()
    assert await bus.owned([g, other, gid()]) == {g, other}
    assert await bus.get_active(chat) == g
    await bus.release(other)
    assert await bus.owned([g, other]) == {g}

    async def expired() -> bool:
        return not await bus.owned([g])

    assert await until(expired, timeout=5, interval=0.05)


async def test_a_stop_request_waits_for_the_owner_heartbeat(bus: Bus) -> None:
    g = gid()
    await bus.publish(g, [(1, {"type": "start"})])
    await bus.request_stop(g)  # no listener: the heartbeat still sees it
    assert (await bus.heartbeat([(g, "c" + g)], 5)).stops == {g}


async def test_only_one_claim_to_reap_wins(bus: Bus) -> None:
    g = gid()
    results = await asyncio.gather(*(bus.claim_reap(g, 30) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
