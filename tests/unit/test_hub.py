"""The hub with the in-process bus: slow subscribers catch up from the log, never slowing the job."""

from __future__ import annotations

import asyncio

from gust.adapters.bus.memory import MemoryBus
from gust.services.hub import MAX_BATCH, Generation, GenerationHub


async def test_a_subscriber_that_falls_behind_resyncs_without_gaps() -> None:
    hub = GenerationHub(MemoryBus(), grace_period=1, ping_interval=5, max_active=10)
    await hub.start()
    release = asyncio.Event()
    total = MAX_BATCH * 3

    async def job(generation: Generation) -> None:
        generation.emit({"type": "start"})
        await release.wait()
        for i in range(total):  # far more than one batch, without yielding to subscribers
            generation.emit_text(str(i))
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


class SlowOutput:
    """A client whose writes complete only when the test says so."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.pending: asyncio.Future[None] | None = None
        self.gone = False

    def send(self, data: bytes) -> asyncio.Future[None] | None:
        if self.gone:
            return None
        self.writes.append(data)
        self.pending = asyncio.get_running_loop().create_future()
        return self.pending

    def busy(self) -> bool:
        return self.pending is not None and not self.pending.done()

    def complete(self) -> None:
        assert self.pending is not None
        self.pending.set_result(None)


async def test_a_pushed_subscriber_gets_what_was_logged_meanwhile_in_one_write() -> None:
    hub = GenerationHub(MemoryBus(), grace_period=1, ping_interval=5, max_active=10)
    await hub.start()
    release = asyncio.Event()

    async def job(generation: Generation) -> None:
        generation.emit({"type": "start"})
        await release.wait()
        for i in range(100):  # the client is still busy with its first write
            generation.emit_text(f"{i},")
        generation.emit({"type": "done"})

    generation = await hub.start_generation("g4", "c4", "u1", job)
    await asyncio.sleep(0)
    output = SlowOutput()
    sub = hub.attach("g4", 0, output, "sse")
    assert sub is not None
    assert len(output.writes) == 1 and b"event: start" in output.writes[0]
    release.set()
    await generation.finished.wait()  # the job ended while the client was busy
    assert len(output.writes) == 1
    output.complete()
    await asyncio.sleep(0)
    assert len(output.writes) == 2  # all 101 waiting events in one write
    text = output.writes[1].decode()
    assert text.count("event: delta") == 100 and text.endswith('event: done\ndata: {"type":"done"}\n\n')
    assert "id: g4:2\n" in text and "id: g4:102\n" in text
    assert not sub.done.done()  # done once the last write is sent
    output.complete()
    await asyncio.wait_for(sub.done, 1)
    assert not generation.subscribers
    await hub.shutdown(1)


async def test_a_client_gone_is_dropped_without_touching_the_job() -> None:
    hub = GenerationHub(MemoryBus(), grace_period=1, ping_interval=5, max_active=10)
    await hub.start()
    release = asyncio.Event()

    async def job(generation: Generation) -> None:
        generation.emit({"type": "start"})
        await release.wait()
        generation.emit_text("a")
        generation.emit({"type": "done"})

    generation = await hub.start_generation("g5", "c5", "u1", job)
    await asyncio.sleep(0)
    output = SlowOutput()
    sub = hub.attach("g5", 0, output, "ndjson")
    assert sub is not None
    output.complete()
    output.gone = True
    release.set()
    await generation.finished.wait()
    assert sub.done.done() and not generation.subscribers
    assert [e.type for e in generation.events(0)] == ["start", "delta", "done"]
    await hub.shutdown(1)
