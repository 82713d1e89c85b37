"""The hub with the in-process bus: slow subscribers catch up from the log, never slowing the job."""

from __future__ import annotations

import asyncio
import json

from gust.adapters.bus.memory import MemoryBus
from gust.domain.events import done_event, start_event
from gust.services.events import compact
from gust.services.hub import Generation, GenerationHub
from gust.services.push import attach

START = start_event(chat_id="c", message_id="m", user_message_id=None, parent_id=None, model="fake")
DONE = done_event("m", "complete", "stop", None)


async def test_a_job_that_crashes_still_ends_its_stream() -> None:
    hub = GenerationHub(MemoryBus(), grace_period=1, ping_interval=5, max_active=10)
    await hub.start()

    async def job(generation: Generation) -> None:
        generation.emit(START)
        raise RuntimeError("boom")

    generation = await hub.start_generation("g3", "c3", "u1", job, message_id="m3")
    await generation.finished.wait()
    events = generation.events(0)
    assert [e.type for e in events] == ["start", "error", "done"]
    assert events[1].data["code"] == "internal_error"
    assert events[2].data["message_id"] == "m3"  # the answer it writes, not the generation's id
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
        generation.emit(START)
        await release.wait()
        for i in range(100):  # the client is still busy with its first write
            generation.emit_text(f"{i},")
        generation.emit(DONE)

    generation = await hub.start_generation("g4", "c4", "u1", job)
    await asyncio.sleep(0)
    output = SlowOutput()
    sub = attach(generation, output, "sse", 0)
    assert len(output.writes) == 1 and b"event: start" in output.writes[0]
    release.set()
    await generation.finished.wait()  # the job ended while the client was busy
    assert len(output.writes) == 1
    output.complete()
    await asyncio.sleep(0)
    assert len(output.writes) == 2  # all 101 waiting events in one write
    text = output.writes[1].decode()
    assert text.count("event: delta") == 100 and text.endswith(f"event: done\ndata: {compact(DONE)}\n\n")
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
        generation.emit(START)
        await release.wait()
        generation.emit_text("a")
        generation.emit(DONE)

    generation = await hub.start_generation("g5", "c5", "u1", job)
    await asyncio.sleep(0)
    output = SlowOutput()
    sub = attach(generation, output, "ndjson", 0)
    output.complete()
    output.gone = True
    release.set()
    await generation.finished.wait()
    assert sub.done.done() and not generation.subscribers
    assert [e.type for e in generation.events(0)] == ["start", "delta", "done"]
    await hub.shutdown(1)


async def test_a_late_subscriber_gets_the_log_after_its_position_then_the_tail() -> None:
    hub = GenerationHub(MemoryBus(), grace_period=1, ping_interval=5, max_active=10)
    await hub.start()
    go_on = asyncio.Event()

    async def job(generation: Generation) -> None:
        generation.emit(START)
        generation.emit_text("a")
        generation.emit_text("b")
        await go_on.wait()
        generation.emit_text("c")
        generation.emit(DONE)

    generation = await hub.start_generation("g6", "c6", "u1", job)
    await asyncio.sleep(0)
    output = SlowOutput()
    sub = attach(generation, output, "ndjson", 1)  # a resume after the start event
    lines = [json.loads(line) for line in output.writes[0].splitlines()]
    assert [(e["id"], e["delta"]) for e in lines] == [("g6:2", "a"), ("g6:3", "b")]
    output.complete()
    go_on.set()
    await generation.finished.wait()
    for _ in range(10):  # each write completes: the next one carries what waited
        if sub.done.done():
            break
        output.complete()
        await asyncio.sleep(0)
    assert sub.done.done()
    tail = [json.loads(line) for data in output.writes[1:] for line in data.splitlines()]
    assert [e["id"] for e in tail] == ["g6:4", "g6:5"] and tail[-1]["type"] == "done"
    await hub.shutdown(1)
