"""Following an answer's stream: which events a client gets, from where, from which point.

`FollowService.follow(user, chat_id, last_event_id)` owns resuming: it reads the
Last-Event-ID, picks the chat's live answer or the one the id names (else the latest),
and returns an `AnswerStream` that writes it one of three ways:

- pushed from this process's log as it grows (services/push.py);
- followed through the shared bus when another process runs it (`follow_bus` below);
- read from the store when its log is gone (past the grace period): a `resync` with the
  stored text and the stored `done`.

Following through a bus never leaves a silent gap. The owner publishes its log to the
bus and keeps it there whole: when the bus loses it (Redis restarted without
persistence) the owner publishes it again from seq 1 (see adapters/bus/redis_streams.py),
so a follower's next read continues where it stopped. What a follower cannot get from
the bus it takes from the store, and says so with a `resync` event `{message_id,
content, reasoning}`: the answer's whole text so far, which replaces what the client
has shown. Then it continues with the live tail, or ends with the stored `done`.

- A read that fails (bus unreachable) is retried with backoff; the client gets pings.
- A silence whose owner has no current heartbeat (dead, or finished and gone) is
  checked against the store: once the message is no longer `streaming` (finished, or
  reaped as `interrupted` by services/reaper.py), the follower sends `resync` with the
  stored text and the stored `done`. While it is still `streaming` the follower waits
  for the reaper; a live owner whose log was lost republishes it within a heartbeat.
- A jump in sequence numbers (events the bus dropped) is preceded by a `resync` from
  the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

from gust.domain.events import AnswerEvent, ResyncEvent, done_event, resync_event
from gust.domain.models import Message, User
from gust.ports.bus import Bus, BusUnavailable
from gust.ports.store import Store
from gust.services.chats import ChatService
from gust.services.events import Event, Format
from gust.services.push import PING, Output, Subscriber, attach

if TYPE_CHECKING:
    from gust.services.hub import Generation, GenerationHub

log = logging.getLogger(__name__)

# Reads the generation's assistant message from the store (None: deleted).
StoredAnswer = Callable[[], Awaitable[Message | None]]

RETRY_FIRST = 0.1
RETRY_MAX = 5.0
MAX_ID_CHARS = 64  # of the stream part of a Last-Event-ID


def stored_resync(message: Message) -> ResyncEvent:
    """The authoritative text of an answer: the client replaces what it has with it."""
    return resync_event(message.id, message.content, message.reasoning)


def stored_ending(message: Message) -> list[AnswerEvent]:
    """How a stream ends when its events are gone: the stored text, then the stored status."""
    done = done_event(message.id, message.status, message.finish_reason, message.usage)
    return [stored_resync(message), done]


def parse_last_event_id(value: str | None) -> tuple[str | None, int]:
    """(stream id, seq) of a Last-Event-ID `<stream>:<seq>`; (None, 0) when unusable."""
    if not value:
        return None, 0
    stream_id, _, seq = value.rpartition(":")
    if not stream_id or not seq.isdigit() or len(stream_id) > MAX_ID_CHARS:
        return None, 0
    return stream_id, int(seq)


class FollowService:
    """Resuming and following answers (GET /api/chats/{id}/events)."""

    def __init__(self, store: Store, chats: ChatService, hub: GenerationHub) -> None:
        self.store = store
        self.chats = chats
        self.hub = hub

    async def follow(self, user: User, chat_id: str, last_event_id: str | None) -> AnswerStream:
        """The chat's answer to follow: the one Last-Event-ID names (after its seq), else the
        live one, else the latest, from its start."""
        await self.chats.get_chat(user, chat_id)
        store, hub = self.store, self.hub
        generation_id, after = parse_last_event_id(last_event_id)
        message = await store.get_message(user.id, generation_id) if generation_id else None
        live = await hub.live_generation_id(chat_id)
        if generation_id is not None and generation_id == live:
            pass  # following the live answer (a continuation's id is not a message id)
        elif message is None or message.chat_id != chat_id:
            # No usable Last-Event-ID: the live answer, else the latest one, from its start.
            after = 0
            generation_id = live
            if generation_id is None:
                answers = [m for m in await store.list_messages(user.id, chat_id) if m.role == "assistant"]
                message = answers[-1] if answers else None
                # A continued answer was last written by another generation than its id.
                generation_id = (message.generation_id or message.id) if message else None
        if generation_id is not None and (
            message is None or generation_id not in (message.id, message.generation_id)
        ):
            message = await store.get_message(user.id, generation_id)
            if message is None:  # a continuation: the answer it writes carries its id
                messages = await store.list_messages(user.id, chat_id)
                message = next((m for m in messages if m.generation_id == generation_id), None)
        streaming = message is None or message.status == "streaming"
        if generation_id is None or not await hub.followable(generation_id, streaming=streaming):
            return AnswerStream(after=after, message=message)  # the stored answer
        local = hub.generations.get(generation_id)
        if local is not None:
            return AnswerStream(local=local, after=after)
        stored_id = message.id if message else generation_id
        stored = partial(store.get_message, user.id, stored_id)
        return AnswerStream(remote=RemoteLog(hub.bus, generation_id, hub.ping_interval, stored), after=after)


class RemoteLog:
    """A generation another process runs, followed through the shared bus."""

    __slots__ = ("bus", "generation_id", "ping_interval", "stored")

    def __init__(self, bus: Bus, generation_id: str, ping_interval: float, stored: StoredAnswer) -> None:
        self.bus = bus
        self.generation_id = generation_id
        self.ping_interval = ping_interval
        self.stored = stored


class AnswerStream:
    """One client's stream of an answer: pushed from a local log, followed through the bus,
    or (neither) the stored answer's ending. `run` writes until `done` or `close()`."""

    def __init__(
        self,
        *,
        after: int = 0,
        local: Generation | None = None,
        remote: RemoteLog | None = None,
        message: Message | None = None,
        fresh: bool = False,
    ) -> None:
        self.after = after
        self.local = local
        self.remote = remote
        self.message = message
        # Just started by this request: its `start` event, logged at once, opens the response.
        self.fresh = fresh
        self._subscriber: Subscriber | None = None
        self._relay: asyncio.Future[None] | None = None
        self._closed = False

    async def run(self, output: Output, fmt: Format) -> None:
        """Write the events to `output` until the last one is sent or the client is gone."""
        if self.local is not None:
            sub = self._subscriber = attach(self.local, output, fmt, self.after)
            if sub.sent == self.after and not sub.done.done() and not self.fresh:
                output.send(b"")  # the headers now: the client knows the stream is open
            await sub.done
        elif self.remote is not None:
            output.send(b"")  # the headers at once: the bus may be slow to answer (or reconnecting)
            self._relay = asyncio.ensure_future(self._follow(self.remote, output, fmt))
            with contextlib.suppress(asyncio.CancelledError):
                await self._relay
        elif self.message is not None:
            ending = enumerate(stored_ending(self.message), self.after + 1)
            output.send(b"".join([Event(self.message.id, seq, data).encode(fmt) for seq, data in ending]))
        else:
            output.send(b"")  # nothing to follow: an empty stream

    async def _follow(self, remote: RemoteLog, output: Output, fmt: Format) -> None:
        batches = follow_bus(
            remote.bus, remote.generation_id, self.after, remote.ping_interval, remote.stored
        )
        async with contextlib.aclosing(batches):  # type: ignore[type-var]
            async for batch in batches:
                sent = output.send(b"".join([e.encode(fmt) for e in batch]) if batch else PING[fmt])
                if sent is None or self._closed:
                    return
                try:
                    await sent
                except Exception:  # noqa: BLE001 - the client is gone (the stream closed)
                    return

    def close(self) -> None:
        """The client went away: stop writing (the generation runs on)."""
        self._closed = True
        if self._subscriber is not None:
            self._subscriber.close()
        if self._relay is not None:
            self._relay.cancel()


async def follow_bus(
    bus: Bus, generation_id: str, after: int, ping_interval: float, stored: StoredAnswer
) -> AsyncIterator[list[Event]]:
    """Batches of events with seq > after, ending with `done`; [] after each silent ping interval."""
    loop = asyncio.get_running_loop()
    last = after
    delay = RETRY_FIRST
    quiet_since = loop.time()
    while True:
        try:
            entries = await bus.read(generation_id, last, ping_interval)
            if not entries:
                ending = await _ended_elsewhere(bus, generation_id, stored)
                if ending is not None:
                    if ending:
                        yield [Event(generation_id, seq, data) for seq, data in enumerate(ending, last + 1)]
                    return
                yield []
                quiet_since = loop.time()
                continue
            batch: list[Event] = []
            if entries[0][0] > last + 1:  # events the bus dropped: the stored text first
                message = await _stored(stored)
                if message is not None:
                    batch.append(Event(generation_id, entries[0][0] - 1, stored_resync(message)))
                log.warning("generation %s: bus log has a gap after seq %d; resynced", generation_id, last)
        except (BusUnavailable, StoreUnreachable):
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)
            if loop.time() - quiet_since >= ping_interval:
                yield []
                quiet_since = loop.time()
            continue
        delay = RETRY_FIRST
        batch += [Event(generation_id, seq, data) for seq, data in entries]
        last = batch[-1].seq
        quiet_since = loop.time()
        yield batch
        if batch[-1].terminal:
            return


class StoreUnreachable(Exception):
    """Reading the stored answer failed: the follower tries again later, as for the bus."""


async def _stored(stored: StoredAnswer) -> Message | None:
    try:
        return await stored()
    except Exception as exc:  # noqa: BLE001 - a store outage must not end a follower's stream
        log.debug("reading a followed answer from the store failed: %s", exc)
        raise StoreUnreachable from exc


async def _ended_elsewhere(bus: Bus, generation_id: str, stored: StoredAnswer) -> list[AnswerEvent] | None:
    """After a silence: the stored ending if no live owner will send more, else None."""
    if await bus.owned([generation_id]):
        return None
    message = await _stored(stored)
    if message is None:
        return []  # deleted: nothing more will come
    if message.status == "streaming":
        return None  # the reaper will end it (or its owner comes back)
    return stored_ending(message)
