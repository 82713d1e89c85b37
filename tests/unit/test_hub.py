"""The hub with the in-process bus: slow subscribers catch up from the log, never slowing the job."""

from __future__ import annotations

import asyncio

from gust.adapters.bus.memory import MemoryBus
from gust.services.hub import SUBSCRIBER_QUEUE, Generation, GenerationHub


async def test_a_subscriber_that_falls_behind_resyncs_without_gaps() -> None:
    hub = GenerationHub(MemoryBus(), grace_period=1, ping_interval=5, max_active=10)
    await hub.start()
    release = asyncio.Event()
    total = SUBSCRIBER_QUEUE * 3

    async def job(generation: Generation) -> None:
        generation.emit({"type": "start"})
        await release.wait()
        for i in range(total):  # far more than a queue holds, without yielding to subscribers
            generation.emit({"type": "delta", "delta": str(i)})
        generation.emit({"type": "done"})

    generation = await hub.start_generation("g1", "c1", "u1", job)
    subscription = hub.subscribe("g1", 0)
    first = await subscription.__anext__()
    assert [e.type for e in first] == ["start"]
    release.set()
    await generation.finished.wait()  # the job ran to the end while nobody read
    received = list(first)
    async for batch in subscription:
        received.extend(batch)
    assert [e.seq for e in received] == list(range(1, total + 3))
    assert [e.data.get("delta") for e in received[1:-1]] == [str(i) for i in range(total)]
    await hub.shutdown(1)


async def test_late_subscriber_gets_the_whole_log_then_the_tail() -> None:
    hub = GenerationHub(MemoryBus(), grace_period=1, ping_interval=5, max_active=10)
    await hub.start()
    go_on = asyncio.Event()

    async def job(generation: Generation) -> None:
        generation.emit({"type": "start"})
        generation.emit({"type": "delta", "delta": "a"})
        await go_on.wait()
        generation.emit({"type": "delta", "delta": "b"})
        generation.emit({"type": "done"})

    await hub.start_generation("g2", "c2", "u1", job)
    await asyncio.sleep(0)
    seen: list[int] = []

    async def read() -> None:
        async for batch in hub.subscribe("g2", 0):
            seen.extend(e.seq for e in batch)

    reader = asyncio.ensure_future(read())
    await asyncio.sleep(0.01)
    go_on.set()
    await asyncio.wait_for(reader, 5)
    assert seen == [1, 2, 3, 4]
    await hub.shutdown(1)


async def test_a_job_that_crashes_still_ends_its_stream() -> None:
    hub = GenerationHub(MemoryBus(), grace_period=1, ping_interval=5, max_active=10)
    await hub.start()

    async def job(generation: Generation) -> None:
        generation.emit({"type": "start"})
        raise RuntimeError("boom")

    generation = await hub.start_generation("g3", "c3", "u1", job)
    await generation.finished.wait()
    events = [e async for batch in hub.subscribe("g3", 0) for e in batch]
    assert [e.type for e in events] == ["start", "error", "done"]
    assert events[1].data["code"] == "internal_error"
    await hub.shutdown(1)
