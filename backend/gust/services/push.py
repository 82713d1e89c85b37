"""Pushing a generation's events to an HTTP response as they are logged (no task, no queue).

The log is the only buffer. While the client is slow (its previous write still pending)
nothing is written; when that write completes, everything logged since goes out in one
write. So a slow client never slows the job, costs no memory of its own, and a fast one
gets each event as it is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol

from gust.domain.events import PING_NDJSON, PING_SSE
from gust.services.events import Format, encode

if TYPE_CHECKING:
    from gust.services.hub import Generation

log = logging.getLogger(__name__)

MAX_BATCH = 512  # events per write when a subscriber catches up (a resume, a slow client)
PING: dict[Format, bytes] = {"sse": PING_SSE, "ndjson": PING_NDJSON}


class Output(Protocol):
    """Where a pushed subscription writes: an HTTP response, in practice."""

    def send(self, data: bytes) -> asyncio.Future[None] | None:
        """Write and flush: resolves once the data is handed to the kernel; None if the client is
        gone. `send(b"")` sends only the response's headers (the stream is open)."""
        ...

    def busy(self) -> bool:
        """True while earlier data is still waiting to be sent (a slow client)."""
        ...


class Subscriber:
    """A pushed subscription: emitting an event writes it at once (see the module's doc)."""

    __slots__ = ("generation", "output", "fmt", "sent", "pinged_at", "done", "_draining", "_last")

    def __init__(self, generation: Generation, output: Output, fmt: Format, after: int) -> None:
        self.generation = generation
        self.output = output
        self.fmt: Format = fmt
        self.sent = after  # seq of the last event written
        self.pinged_at = after
        # Resolves when the `done` event has been written and sent, or the client is gone.
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._draining = False
        self._last: asyncio.Future[None] | None = None

    def push(self) -> None:
        if self._draining or self.done.done():
            return
        generation = self.generation
        size = len(generation.log)
        if size <= self.sent:
            return
        if self.output.busy() and self._last is not None and not self._last.done():
            self._draining = True
            self._last.add_done_callback(self._drained)
            return
        end = min(size, self.sent + MAX_BATCH)
        entries = generation.log.slice(self.sent, end - self.sent)
        try:
            sent = self.output.send(encode(generation.id, self.sent + 1, entries, self.fmt))
        except Exception:  # never let one client's failure reach the job that emits
            log.exception("writing generation %s to a subscriber failed", generation.id)
            sent = None
        if sent is None:
            self.close()
            return
        self._last = sent
        self.sent = end
        if end == size and generation.ended:
            self._last.add_done_callback(self._finished)
        elif end < size:
            self._draining = True
            self._last.add_done_callback(self._drained)

    def _drained(self, _: object) -> None:
        self._draining = False
        self.push()

    def _finished(self, _: object) -> None:
        self.close()

    def ping(self) -> None:
        """Called every ping interval: a keep-alive if nothing was written since the last call."""
        quiet = self.sent == self.pinged_at and not self._draining
        if quiet and not self.done.done() and not self.output.busy():
            try:
                sent = self.output.send(PING[self.fmt])
            except Exception:
                sent = None
            if sent is None:
                self.close()
            else:
                self._last = sent
        self.pinged_at = self.sent

    def close(self) -> None:
        """The client went away (or got everything): stop writing to it."""
        self.generation.subscribers.discard(self)
        if not self.done.done():
            self.done.set_result(None)


def attach(generation: Generation, output: Output, fmt: Format, after: int) -> Subscriber:
    """Push the events after `after`, then every new one, to `output`.

    Await the subscriber's `done`; call its `close()` when the client goes away.
    """
    sub = Subscriber(generation, output, fmt, after)
    if not generation.ended:
        generation.subscribers.add(sub)
    sub.push()
    if generation.ended and len(generation.log) <= after:
        sub.close()  # nothing was missed and nothing more will come
    return sub
