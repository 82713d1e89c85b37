"""The generation hub: jobs independent of HTTP requests, their event logs, their subscribers.

A generation's events get sequence numbers from 1 and are kept in its log (compact:
see events.py). A subscriber is a position in that log, *pushed* to an HTTP response
(`attach`, services/push.py): logging an event writes it to the client at once. With a
shared bus (Redis) the log is also published, in batches, so other processes can replay
and follow it (services/follow.py).

Across processes each running generation has an owner mark on the bus, refreshed by
its process's heartbeat every `owner_timeout / 6` seconds and valid for half the owner
timeout; a process that stops refreshing (crash, kill -9, lost host) has its
generations reaped by any other (services/reaper.py). The heartbeat also tells the
owner which of its logs the bus lost (it publishes them again, whole) and which stop
requests its listener may have missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from gust.domain.errors import Unavailable
from gust.domain.events import AnswerEvent, done_event, error_event
from gust.ports.bus import Bus, BusUnavailable
from gust.services.events import Event, EventLog, ReasoningText, materialize
from gust.services.push import Subscriber

log = logging.getLogger(__name__)

RETRY_FIRST, RETRY_MAX = 0.1, 5.0  # backoff of a publisher whose bus is unreachable


class Generation:
    """A running (or recently finished) generation and its event log."""

    __slots__ = (
        "id", "message_id", "chat_id", "user_id", "log", "ended", "subscribers", "task", "stop_reason",
        "finished", "publisher", "_published", "_publish_wakeup", "_lost",
    )  # fmt: skip

    def __init__(
        self, generation_id: str, chat_id: str, user_id: str, shared: bool, message_id: str | None = None
    ) -> None:
        self.id = generation_id
        # The answer it writes: its own id, except for a continuation (a new generation
        # writing into a stored answer, services/continuation.py).
        self.message_id = message_id or generation_id
        self.chat_id = chat_id
        self.user_id = user_id
        self.log = EventLog()
        self.ended = False  # the `done` event is logged
        self.subscribers: set[Subscriber] = set()
        self.task: asyncio.Task[None] | None = None
        self.stop_reason: str | None = None  # "stopped" | "shutdown"
        self.finished = asyncio.Event()
        self.publisher: asyncio.Task[None] | None = None
        self._published = 0
        self._lost = False  # the bus lost the published log: publish all of it again
        # Only a generation shared through a bus has a publisher to wake (an Event holds
        # a deque of about 600 bytes: not paid by every stream of a single process).
        self._publish_wakeup = asyncio.Event() if shared else None

    def emit(self, *events: AnswerEvent) -> None:
        """Log events (built by domain/events.py) and push them to every subscriber (in one
        write) without waiting."""
        for data in events:
            self.log.append(Event(self.id, len(self.log) + 1, data))
            if data["type"] == "done":
                self.ended = True
        self._notify()

    def emit_text(self, text: str) -> None:
        """Log an answer delta (the hot path: the text itself is the log entry)."""
        self.log.append(text)
        self._notify()

    def emit_reasoning(self, text: ReasoningText) -> None:
        self.log.append(text)
        self._notify()

    def _notify(self) -> None:
        for sub in tuple(self.subscribers):
            sub.push()
        if self._publish_wakeup is not None:
            self._publish_wakeup.set()

    def events(self, after: int, limit: int = 1 << 30) -> list[Event]:
        entries = self.log.slice(after, limit)
        return [materialize(self.id, seq, entry) for seq, entry in enumerate(entries, after + 1)]

    def republish(self) -> None:
        """The bus lost this generation's log: publish it again from seq 1."""
        if self._publish_wakeup is not None:
            self._lost = True
            self._publish_wakeup.set()

    async def publish_loop(self, bus: Bus, grace_period: float) -> None:
        """Ship logged events to the shared bus in batches (one round trip per batch).

        Nothing is skipped: a batch the bus did not take is sent again after a backoff,
        and a log the bus lost is sent again whole, so followers never see a gap.
        """
        wakeup = self._publish_wakeup
        if wakeup is None:
            raise RuntimeError(f"generation {self.id} is not shared through a bus")
        delay = RETRY_FIRST
        failing = False
        while True:
            await wakeup.wait()
            wakeup.clear()
            if self._lost:
                self._lost, self._published = False, 0
            batch = self.events(self._published)
            if not batch:
                continue
            terminal = batch[-1].terminal
            try:
                kept = await bus.publish(
                    self.id, [(e.seq, e.data) for e in batch], grace_period if terminal else None
                )
            except Exception as exc:
                # An outage is logged once, by the bus; anything else once per failing streak.
                if not isinstance(exc, BusUnavailable) and not failing:
                    log.exception("publishing generation %s to the bus failed; retrying", self.id)
                failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                wakeup.set()
                continue
            delay, failing = RETRY_FIRST, False
            if not kept:  # the bus lost the log's start: all of it again
                self._published = 0
                wakeup.set()
                continue
            self._published = batch[-1].seq
            if terminal:
                return


JobFactory = Callable[[Generation], Coroutine[Any, Any, None]]


class GenerationHub:
    def __init__(
        self,
        bus: Bus,
        *,
        grace_period: float,
        ping_interval: float,
        max_active: int,
        owner_timeout: float = 20.0,
    ) -> None:
        self.bus = bus
        self.owner_ttl = owner_timeout / 2  # an owner mark lasts this long without a heartbeat
        self.owner_interval = owner_timeout / 6
        self.grace_period = grace_period
        self.ping_interval = ping_interval
        self.max_active = max_active
        self.generations: dict[str, Generation] = {}
        self.live_by_chat: dict[str, str] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._forget_handles: dict[str, asyncio.TimerHandle] = {}
        self._stop_listener: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        self._stop_listener = asyncio.create_task(self.bus.listen_stops(self._on_stop_request))
        self._pinger = asyncio.create_task(self._ping_idle())
        if self.bus.shared:
            self._heartbeat = asyncio.create_task(self._beat_forever())

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
        # Let the last events (the `done`s) reach other processes' followers.
        publishers = [
            g.publisher for g in self.generations.values() if g.publisher and not g.publisher.done()
        ]
        if publishers:
            await asyncio.wait(publishers, timeout=2)
        for task in (self._stop_listener, self._heartbeat, self._pinger, *self._background):
            if task is not None:
                task.cancel()
        for handle in self._forget_handles.values():
            handle.cancel()

    # -- jobs ------------------------------------------------------------------------
    async def start_generation(
        self, generation_id: str, chat_id: str, user_id: str, job: JobFactory, message_id: str | None = None
    ) -> Generation:
        generation = Generation(generation_id, chat_id, user_id, self.bus.shared, message_id)
        self.generations[generation_id] = generation
        self.live_by_chat[chat_id] = generation_id
        if self.bus.shared:
            # Owned and live at once (a reaper never sees it unowned); during an outage the
            # next heartbeat marks it.
            with contextlib.suppress(BusUnavailable):
                await self.bus.heartbeat([(generation_id, chat_id)], self.owner_ttl)
            generation.publisher = self._spawn(generation.publish_loop(self.bus, self.grace_period))
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
            if not generation.ended:
                # The job died without its closing events: never leave subscribers hanging.
                generation.emit(
                    error_event("internal_error", "the generation failed", True),
                    done_event(generation.message_id, "error", None, None),
                )
            generation.finished.set()
            if self.live_by_chat.get(generation.chat_id) == generation.id:
                del self.live_by_chat[generation.chat_id]
            self._spawn(self._after_finish(generation))

    async def _after_finish(self, generation: Generation) -> None:
        loop = asyncio.get_running_loop()
        self._forget_handles[generation.id] = loop.call_later(self.grace_period, self._forget, generation.id)
        if self.bus.shared:
            # The final publish sets the log's expiry; the owner mark goes once it is out.
            if generation.publisher is not None:
                await asyncio.wait([generation.publisher], timeout=max(self.grace_period, 5.0))
                generation.publisher.cancel()
            with contextlib.suppress(Exception):  # an outage is logged by the bus; marks expire
                await self.bus.clear_active(generation.chat_id, generation.id)
                await self.bus.release(generation.id)

    def _forget(self, generation_id: str) -> None:
        self._forget_handles.pop(generation_id, None)
        self.generations.pop(generation_id, None)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _ping_idle(self) -> None:
        """Every ping interval, a keep-alive to pushed subscribers that got nothing since the last.

        One task for the whole hub: no per-event timer on the hot path.
        """
        while True:
            await asyncio.sleep(self.ping_interval)
            for generation in list(self.generations.values()):
                for sub in tuple(generation.subscribers):
                    sub.ping()

    async def _beat_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.owner_interval)
            try:
                await self.beat()
            except BusUnavailable:
                pass  # logged once per outage by the bus; the next beat tries again
            except Exception:
                if not failing:  # once per failing streak, not every few seconds
                    log.exception("generation heartbeat failed; retrying")
                failing = True
            else:
                failing = False

    async def beat(self) -> None:
        """Mark this process's running generations owned; republish lost logs, apply missed stops."""
        running = [(g.id, g.chat_id) for g in self.running()]
        if not running:
            return
        beat = await self.bus.heartbeat(running, self.owner_ttl)
        for generation_id in beat.lost:
            generation = self.generations.get(generation_id)
            if generation is not None:
                generation.republish()
        for generation_id in beat.stops:
            self._stop_local(generation_id)

    # -- stop ------------------------------------------------------------------------
    async def stop(self, chat_id: str) -> str | None:
        """Stop the chat's live generation wherever it runs; its id, or None if none is live."""
        try:
            generation_id = self.live_by_chat.get(chat_id)
            if generation_id is None and self.bus.shared:
                generation_id = await self.bus.get_active(chat_id)
        except BusUnavailable:
            raise Unavailable("the stream bus is unreachable; retry shortly") from None
        if generation_id is None:
            return None
        await self.stop_generation(generation_id)
        return generation_id

    async def stop_generation(self, generation_id: str) -> None:
        """Stop a generation by id: here, or through the bus in whichever process runs it.

        Over the bus the request is also kept for the owner's next heartbeat, so an owner
        whose stop listener is reconnecting still gets it."""
        if generation_id in self.generations:
            self._stop_local(generation_id)
            return
        if not self.bus.shared:
            return
        try:
            await self.bus.request_stop(generation_id)
        except BusUnavailable:
            raise Unavailable("the stream bus is unreachable; retry shortly") from None

    def _stop_local(self, generation_id: str) -> None:
        generation = self.generations.get(generation_id)
        if generation is not None and generation.task is not None and not generation.finished.is_set():
            generation.stop_reason = generation.stop_reason or "stopped"
            generation.task.cancel()

    async def _on_stop_request(self, generation_id: str) -> None:
        self._stop_local(generation_id)

    # -- subscribe -------------------------------------------------------------------
    async def live_generation_id(self, chat_id: str) -> str | None:
        """The chat's running generation, if one is known (None while the bus is unreachable)."""
        generation_id = self.live_by_chat.get(chat_id)
        if generation_id is None and self.bus.shared:
            with contextlib.suppress(BusUnavailable):
                generation_id = await self.bus.get_active(chat_id)
        return generation_id

    async def followable(self, generation_id: str, *, streaming: bool) -> bool:
        """Whether to follow the generation's events (else its stored state is the answer).

        `streaming`: the store says it is still running (or does not know it yet). Such a
        generation is followed even while its log is missing or the bus is unreachable:
        its owner republishes the log, or the reaper ends it.
        """
        if generation_id in self.generations:
            return True
        if not self.bus.shared:
            return False
        if streaming:
            return True
        try:
            return await self.bus.exists(generation_id)
        except BusUnavailable:
            return False
