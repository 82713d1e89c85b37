"""Following a generation that another process runs, through a shared bus, without silent gaps.

The owner publishes its log to the bus and keeps it there whole: when the bus loses it
(Redis restarted without persistence) the owner publishes it again from seq 1 (see
adapters/bus/redis_streams.py), so a follower's next read continues where it stopped.
What a follower cannot get from the bus it takes from the store, and says so with a
`resync` event `{message_id, content, reasoning}`: the answer's whole text so far,
which replaces what the client has shown. Then it continues with the live tail, or
ends with the stored `done`.

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
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from gust.domain.models import Message
from gust.ports.bus import Bus, BusUnavailable
from gust.services.events import Event

log = logging.getLogger(__name__)

# Reads the generation's assistant message from the store (None: deleted).
StoredAnswer = Callable[[], Awaitable[Message | None]]

RETRY_FIRST = 0.1
RETRY_MAX = 5.0


def resync_event(message: Message) -> dict[str, Any]:
    """The authoritative text of an answer: the client replaces what it has with it."""
    return {
        "type": "resync",
        "message_id": message.id,
        "content": message.content,
        "reasoning": message.reasoning or None,
    }


def stored_ending(message: Message) -> list[dict[str, Any]]:
    """How a stream ends when its events are gone: the stored text, then the stored status."""
    return [
        resync_event(message),
        {
            "type": "done",
            "message_id": message.id,
            "status": message.status,
            "finish_reason": message.finish_reason,
            "usage": message.usage,
        },
    ]


async def follow_bus(
    bus: Bus, generation_id: str, after: int, ping_interval: float, stored: StoredAnswer | None
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
                message = await _stored(stored) if stored is not None else None
                if message is not None:
                    batch.append(Event(generation_id, entries[0][0] - 1, resync_event(message)))
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


async def _ended_elsewhere(
    bus: Bus, generation_id: str, stored: StoredAnswer | None
) -> list[dict[str, Any]] | None:
    """After a silence: the stored ending if no live owner will send more, else None."""
    if await bus.owned([generation_id]):
        return None
    if stored is None:
        return [] if not await bus.exists(generation_id) else None
    message = await _stored(stored)
    if message is None:
        return []  # deleted: nothing more will come
    if message.status == "streaming":
        return None  # the reaper will end it (or its owner comes back)
    return stored_ending(message)
