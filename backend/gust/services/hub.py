"""The generation hub: jobs independent of HTTP requests, event logs, per-chat subscriber queues.

A generation's events get sequence numbers from 1. Each subscriber is a bounded
asyncio.Queue; a subscriber that falls behind is marked lagging instead of slowing the
job, and catches up from the log. With a shared bus (Redis) the log is also published,
in batches, so other processes can replay and follow it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from gust.ports.bus import Bus

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE = 256
ACTIVE_TTL = 30.0  # seconds a live mark survives a crashed owner
ACTIVE_REFRESH = 10.0


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Event:
    """One logged event; its wire forms are encoded once and shared by every subscriber."""

    __slots__ = ("seq", "type", "data", "_sse", "_ndjson", "generation_id")

    def __init__(self, generation_id: str, seq: int, data: dict[str, Any]) -> None:
        self.generation_id = generation_id
        self.seq = seq
        self.type: str = data["type"]
        self.data = data
        self._sse: bytes | None = None
        self._ndjson: bytes | None = None

    @property
    def id(self) -> str:
        return f"{self.generation_id}:{self.seq}"

    def sse(self) -> bytes:
        if self._sse is None:
            self._sse = f"id: {self.id}\nevent: {self.type}\ndata: {_compact(self.data)}\n\n".encode()
        return self._sse

    def ndjson(self) -> bytes:
        if self._ndjson is None:
            self._ndjson = (_compact({**self.data, "id": self.id}) + "\n").encode()
        return self._ndjson

    @property
    def terminal(self) -> bool:
        return self.type == "done"


class Subscriber:
    __slots__ = ("queue", "last_seq", "lagging", "pinged_at_seq")

    def __init__(self, after: int) -> None:
        # None in the queue means "send a keep-alive ping" (see GenerationHub._ping_idle).
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.last_seq = after
        self.lagging = False
        self.pinged_at_seq = after


class Generation:
    """A running (or recently finished) generation and its event log."""

    def __init__(self, generation_id: str, chat_id: str, user_id: str, shared: bool) -> None:
        self.id = generation_id
        self.chat_id = chat_id
        self.user_id = user_id
        self.log: list[Event] = []
        self.subscribers: set[Subscriber] = set()
        self.task: asyncio.Task[None] | None = None
        self.stop_reason: str | None = None  # "stopped" | "shutdown"
        self.finished = asyncio.Event()
        self._shared = shared
        self._unpublished: list[Event] = []
        self._publish_wakeup = asyncio.Event()

    def emit(self, data: dict[str, Any]) -> Event:
        """Log an event and hand it to every subscriber without waiting for any of them."""
        event = Event(self.id, len(self.log) + 1, data)
        self.log.append(event)
        for sub in self.subscribers:
            if sub.lagging:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.lagging = True  # it will catch up from the log
        if self._shared:
            self._unpublished.append(event)
            self._publish_wakeup.set()
        return event

    async def publish_loop(self, bus: Bus) -> None:
        """Ship logged events to the shared bus in batches (one round trip per batch)."""
        while True:
            await self._publish_wakeup.wait()
            self._publish_wakeup.clear()
            batch, self._unpublished = self._unpublished, []
            if batch:
                try:
                    await bus.publish(self.id, [(e.seq, e.data) for e in batch])
                except Exception:
                    log.exception("publishing generation %s to the bus failed", self.id)
            if batch and batch[-1].terminal:
                return


JobFactory = Callable[[Generation], Coroutine[Any, Any, None]]


class GenerationHub:
    def __init__(self, bus: Bus, *, grace_period: float, ping_interval: float, max_active: int) -> None:
        self.bus = bus
        self.grace_period = grace_period
        self.ping_interval = ping_interval
        self.max_active = max_active
        self.generations: dict[str, Generation] = {}
        self.live_by_chat: dict[str, str] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._forget_handles: dict[str, asyncio.TimerHandle] = {}
        self._stop_listener: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self.on_finished: list[Callable[[Generation], None]] = []

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._stop_listener = asyncio.create_task(self.bus.listen_stops(self._on_stop_request))
        self._pinger = asyncio.create_task(self._ping_idle())
        if self.bus.shared:
            self._refresher = asyncio.create_task(self._refresh_active())

    @property
    def active_count(self) -> int:
        return len(self.live_by_chat)

    def running(self) -> list[Generation]:
        return [g for g in self.generations.values() if not g.finished.is_set()]

    async def shutdown(self, drain_timeout: float) -> None:
        """Let running jobs finish for up to `drain_timeout` s, then end them as interrupted."""
        running = self.running()
        if running:
            log.info("waiting up to %.0fs for %d running generations", drain_timeout, len(running))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*(g.finished.wait() for g in running)), drain_timeout)
        for generation in self.running():
            generation.stop_reason = "shutdown"
            if generation.task is not None:
                generation.task.cancel()
        remaining = [g.finished.wait() for g in self.generations.values()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*remaining), 10)
        for task in (self._stop_listener, self._refresher, self._pinger, *self._background):
            if task is not None:
                task.cancel()
        for handle in self._forget_handles.values():
            handle.cancel()

    # -- jobs ------------------------------------------------------------------------
    async def start_generation(
        self, generation_id: str, chat_id: str, user_id: str, job: JobFactory
    ) -> Generation:
        generation = Generation(generation_id, chat_id, user_id, self.bus.shared)
        self.generations[generation_id] = generation
        self.live_by_chat[chat_id] = generation_id
        if self.bus.shared:
            await self.bus.set_active(chat_id, generation_id, ACTIVE_TTL)
            self._spawn(generation.publish_loop(self.bus))
        generation.task = asyncio.create_task(self._run(generation, job), name=f"generation-{generation_id}")
        return generation

    async def _run(self, generation: Generation, job: JobFactory) -> None:
        try:
            await job(generation)
        except asyncio.CancelledError:
            pass  # the job records a stop itself; a cancel that escapes it ends the task quietly
        except Exception:
            log.exception("generation %s failed", generation.id)
        finally:
            if not generation.log or not generation.log[-1].terminal:
                # The job died without its closing events: never leave subscribers hanging.
                generation.emit(
                    {
                        "type": "error",
                        "code": "internal_error",
                        "message": "the generation failed",
                        "retryable": True,
                    }
                )
                generation.emit(
                    {
                        "type": "done",
                        "message_id": generation.id,
                        "status": "error",
                        "finish_reason": None,
                        "usage": None,
                    }
                )
            generation.finished.set()
            if self.live_by_chat.get(generation.chat_id) == generation.id:
                del self.live_by_chat[generation.chat_id]
            for callback in self.on_finished:
                callback(generation)
            self._spawn(self._after_finish(generation))

    async def _after_finish(self, generation: Generation) -> None:
        loop = asyncio.get_running_loop()
        self._forget_handles[generation.id] = loop.call_later(self.grace_period, self._forget, generation.id)
        if self.bus.shared:
            with contextlib.suppress(Exception):
                await self.bus.clear_active(generation.chat_id, generation.id)
                await self.bus.expire(generation.id, self.grace_period)

    def _forget(self, generation_id: str) -> None:
        self._forget_handles.pop(generation_id, None)
        self.generations.pop(generation_id, None)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _ping_idle(self) -> None:
        """Every ping interval, nudge subscribers that received nothing since the last tick.

        One task for the whole hub: no per-event timer on the hot path.
        """
        while True:
            await asyncio.sleep(self.ping_interval)
            for generation in list(self.generations.values()):
                for sub in generation.subscribers:
                    if sub.last_seq == sub.pinged_at_seq and sub.queue.empty():
                        sub.queue.put_nowait(None)
                    sub.pinged_at_seq = sub.last_seq

    async def _refresh_active(self) -> None:
        while True:
            await asyncio.sleep(ACTIVE_REFRESH)
            for generation in self.running():
                with contextlib.suppress(Exception):
                    await self.bus.set_active(generation.chat_id, generation.id, ACTIVE_TTL)

    # -- stop ------------------------------------------------------------------------
    async def stop(self, chat_id: str) -> str | None:
        """Stop the chat's live generation wherever it runs; its id, or None if none is live."""
        generation_id = self.live_by_chat.get(chat_id)
        if generation_id is None and self.bus.shared:
            generation_id = await self.bus.get_active(chat_id)
        if generation_id is None:
            return None
        if generation_id in self.generations:
            self._stop_local(generation_id)
        else:
            await self.bus.request_stop(generation_id)
        return generation_id

    def _stop_local(self, generation_id: str) -> None:
        generation = self.generations.get(generation_id)
        if generation is not None and generation.task is not None and not generation.finished.is_set():
            generation.stop_reason = generation.stop_reason or "stopped"
            generation.task.cancel()

    async def _on_stop_request(self, generation_id: str) -> None:
        self._stop_local(generation_id)

    # -- subscribe -------------------------------------------------------------------
    async def live_generation_id(self, chat_id: str) -> str | None:
        generation_id = self.live_by_chat.get(chat_id)
        if generation_id is None and self.bus.shared:
            generation_id = await self.bus.get_active(chat_id)
        return generation_id

    async def has_log(self, generation_id: str) -> bool:
        if generation_id in self.generations:
            return True
        if self.bus.shared:
            return bool(await self.bus.read(generation_id, 0, 0.001))
        return False

    def subscribe(self, generation_id: str, after: int = 0) -> AsyncIterator[list[Event]]:
        """Batches of events with seq > after, ending with the `done` event.

        Yields an empty batch after `ping_interval` of silence (the writer sends a ping).
        """
        generation = self.generations.get(generation_id)
        if generation is not None:
            return self._subscribe_local(generation, after)
        if self.bus.shared:
            return self._subscribe_bus(generation_id, after)
        return _nothing()

    async def _subscribe_local(self, generation: Generation, after: int) -> AsyncIterator[list[Event]]:
        sub = Subscriber(after)
        backlog = generation.log[after:]
        if generation.log and generation.log[-1].terminal:
            if backlog:  # a finished log: what was missed, and nothing more will come
                yield backlog
            return
        generation.subscribers.add(sub)
        try:
            if backlog:
                sub.last_seq = backlog[-1].seq
                yield backlog
            while True:
                if sub.lagging:
                    # Everything after what this subscriber has seen is in the log.
                    while not sub.queue.empty():
                        sub.queue.get_nowait()
                    sub.lagging = False
                    batch = generation.log[sub.last_seq :]
                else:
                    first = await sub.queue.get()
                    if first is None:
                        yield []  # a keep-alive ping
                        continue
                    batch = [first]
                    while not sub.queue.empty():  # drain: one write for all waiting events
                        item = sub.queue.get_nowait()
                        if item is not None:
                            batch.append(item)
                if not batch:
                    continue
                sub.last_seq = batch[-1].seq
                yield batch
                if batch[-1].terminal:
                    return
        finally:
            generation.subscribers.discard(sub)

    async def _subscribe_bus(self, generation_id: str, after: int) -> AsyncIterator[list[Event]]:
        last = after
        while True:
            entries = await self.bus.read(generation_id, last, self.ping_interval)
            if not entries:
                if not await self.bus.read(generation_id, 0, 0.001):
                    return  # the log is gone (expired): nothing more will come
                yield []
                continue
            batch = [Event(generation_id, seq, data) for seq, data in entries]
            last = batch[-1].seq
            yield batch
            if batch[-1].terminal:
                return


async def _nothing() -> AsyncIterator[list[Event]]:
    return
    yield  # an empty async generator


StopCallback = Callable[[str], Awaitable[None]]
