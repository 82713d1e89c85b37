"""Reaping the generations of a process that stopped (crash, kill -9, lost host).

Runs in every process when the bus is shared. Each running generation's owner mark on
the bus is refreshed by its process's heartbeat (services/hub.py) and lasts half the
owner timeout. Every `owner_timeout / 6` seconds the reaper lists the store's
`streaming` answers that this process does not run and asks the bus which have an
owner. One seen without an owner on every scan for a third of the timeout (so a bus
that restarted empty gives live owners time to mark their generations again) is
reaped: one process wins the claim (SET NX), re-reads the message, marks it
`interrupted` keeping its last checkpointed text, and appends to its log a `resync`
with that text, `error {code: "owner_lost", retryable: true}` and
`done {status: "interrupted"}`, so every follower ends with exactly the stored text.
A dead owner is thus noticed within the owner timeout: at most half of it for its
mark to expire, a third of it seen unowned, and one scan interval.

With the in-process bus there is nothing to reap: a single process's unfinished
answers are marked at start-up (GenerationService.recover_interrupted).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from gust.domain.events import done_event, error_event
from gust.domain.ids import now
from gust.domain.models import Message
from gust.ports.bus import Bus, BusUnavailable
from gust.ports.store import Store
from gust.services.follow import stored_resync
from gust.services.hub import GenerationHub

log = logging.getLogger(__name__)

SCAN_LIMIT = 500  # streaming answers looked at per scan (oldest first)
CLAIM_TTL = 60  # a claimant that failed midway leaves the answer to the next scan after this
OWNER_LOST: dict[str, Any] = {
    "code": "owner_lost",
    "message": "the server answering this message stopped; ask again to continue",
    "retryable": True,
}


def generation_of(message: Message) -> str:
    """The generation writing a streaming answer: its own id, or a continuation's."""
    return message.generation_id or message.id


class OwnerReaper:
    def __init__(self, store: Store, hub: GenerationHub, owner_timeout: float) -> None:
        self.store = store
        self.hub = hub
        self.bus: Bus = hub.bus
        self.interval = owner_timeout / 6
        self.absence = owner_timeout / 3
        self.unowned_since: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        if self.bus.shared and self._task is None:
            self._task = asyncio.create_task(self._run(), name="owner-reaper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.scan()
            except BusUnavailable:
                pass  # the bus logs its outage once; scan again next time
            except Exception as exc:  # noqa: BLE001 - e.g. the store is down: one line per streak
                if not self._failing:
                    log.warning("reaping dead owners' answers failed: %s (retrying)", exc)
                self._failing = True
            else:
                self._failing = False

    async def scan(self) -> int:
        """One pass: reap what has been without an owner long enough; how many were reaped."""
        streaming = await self.store.list_messages_by_status("streaming", limit=SCAN_LIMIT)
        others = [m for m in streaming if generation_of(m) not in self.hub.generations]
        owned = await self.bus.owned([generation_of(m) for m in others]) if others else set()
        clock = asyncio.get_running_loop().time()
        unowned: dict[str, float] = {}
        reaped = 0
        for message in others:
            key = generation_of(message)
            if key in owned:
                continue
            since = self.unowned_since.get(key, clock)
            if clock - since >= self.absence and await self.reap(message):
                reaped += 1
                continue
            unowned[key] = since
        self.unowned_since = unowned
        return reaped

    async def reap(self, message: Message) -> bool:
        """End a dead owner's generation: stored as interrupted, announced to its followers."""
        generation_id = generation_of(message)
        if not await self.bus.claim_reap(generation_id, CLAIM_TTL):
            return False  # another process reaps it
        current = await self.store.get_message(message.user_id, message.id)
        if current is None or current.status != "streaming":
            return False  # finished (or deleted) meanwhile
        changes = {"status": "interrupted", "error": dict(OWNER_LOST), "updated_at": now()}
        if not await self.store.update_message(current.user_id, current.id, changes, if_status="streaming"):
            return False  # its owner finished it between the read and this write
        current = dataclasses.replace(current, **changes)  # type: ignore[arg-type]
        log.warning("generation %s: its process stopped answering; marked interrupted", current.id)
        top = await self.bus.last_seq(generation_id)
        if top:  # a lost log is not recreated: followers read the stored ending themselves
            ending = [
                stored_resync(current),
                error_event(**OWNER_LOST),
                done_event(current.id, "interrupted", None, current.usage),
            ]
            await self.bus.publish(generation_id, list(enumerate(ending, top + 1)), self.hub.grace_period)
        return True
