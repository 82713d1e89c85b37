"""Following a generation through each bus adapter: what a follower gets when the log has holes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from gust.adapters.bus.memory import MemoryBus
from gust.adapters.bus.redis_streams import RedisBus
from gust.domain.models import Message, MessageStatus
from gust.ports.bus import Bus
from gust.services.events import Event
from gust.services.follow import follow_bus
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


def answer(generation_id: str, content: str, status: MessageStatus) -> Message:
    return Message(
        id=generation_id, chat_id="c", user_id="u", role="assistant", content=content,
        status=status, created_at=0.0, updated_at=0.0,
    )  # fmt: skip


async def collect(batches: AsyncIterator[list[Event]], limit: int = 10) -> list[list[Event]]:
    out: list[list[Event]] = []
    async for batch in batches:
        out.append(batch)
        if len(out) >= limit:
            break
    return out


async def test_a_gap_in_the_log_comes_after_the_stored_text(bus: Bus) -> None:
    g = "g" + uuid.uuid4().hex
    await bus.publish(g, [(1, {"type": "start"}), (2, {"type": "delta", "delta": "a"})])
    await bus.publish(g, [(6, {"type": "delta", "delta": "f"}), (7, {"type": "done", "status": "complete"})])

    async def stored() -> Message:
        return answer(g, "abcde", "streaming")

    batches = await collect(follow_bus(bus, g, 2, 1, stored))
    events = [e for batch in batches for e in batch]
    assert [(e.seq, e.type) for e in events] == [(5, "resync"), (6, "delta"), (7, "done")]
    assert events[0].data["content"] == "abcde"


async def test_a_silence_without_an_owner_ends_with_the_stored_answer(bus: Bus) -> None:
    g = "g" + uuid.uuid4().hex
    await bus.publish(g, [(1, {"type": "start"}), (2, {"type": "delta", "delta": "a"})])
    status: MessageStatus = "streaming"

    async def stored() -> Message:
        return answer(g, "abc", status)

    # Owned: the follower only pings while it waits.
    await bus.heartbeat([(g, "c")], 30)
    assert await collect(follow_bus(bus, g, 2, 0.2, stored), limit=2) == [[], []]
    # No owner, still `streaming` in the store: waiting for the reaper, still pings.
    await bus.release(g)
    assert await collect(follow_bus(bus, g, 2, 0.2, stored), limit=2) == [[], []]
    # Reaped (or finished) in the store: the stored text, then the stored status.
    status = "interrupted"
    events = [e for batch in await collect(follow_bus(bus, g, 2, 0.2, stored)) for e in batch]
    assert [(e.seq, e.type) for e in events] == [(3, "resync"), (4, "done")]
    assert events[0].data["content"] == "abc" and events[1].data["status"] == "interrupted"
