"""A strict Server-Sent Events parser for tests (text in, events out)."""

from __future__ import annotations

import codecs
import json
import weakref
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class SSEEvent:
    id: str | None
    event: str
    data: dict[str, Any]

    @property
    def seq(self) -> int:
        assert self.id is not None
        return int(self.id.rsplit(":", 1)[1])


def parse_sse(text: str) -> tuple[list[SSEEvent], int]:
    """Events and ping comments in a complete SSE body; fails on anything malformed."""
    events: list[SSEEvent] = []
    pings = 0
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                pings += 1
                continue
            name, sep, value = line.partition(":")
            assert sep, f"malformed SSE line {line!r}"
            fields[name] = value[1:] if value.startswith(" ") else value
        if not fields:
            continue
        data = json.loads(fields["data"])
        assert data["type"] == fields["event"], "data.type repeats the event name"
        events.append(SSEEvent(fields.get("id"), fields["event"], data))
    return events, pings


class _ReaderState:
    """What was received on a response but not yet returned (kept between reads)."""

    def __init__(self) -> None:
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buffer = ""
        self.pending: list[SSEEvent] = []


_STATES: weakref.WeakKeyDictionary[aiohttp.ClientResponse, _ReaderState] = weakref.WeakKeyDictionary()


async def read_events(resp: aiohttp.ClientResponse, *, stop_after: int | None = None) -> list[SSEEvent]:
    """Read SSE events from a live response until `done` (or `stop_after` events).

    Several calls on one response continue where the previous one stopped.
    """
    state = _STATES.setdefault(resp, _ReaderState())
    events: list[SSEEvent] = []

    def take() -> bool:
        while state.pending:
            event = state.pending.pop(0)
            events.append(event)
            if event.event == "done" or (stop_after is not None and len(events) >= stop_after):
                return True
        return False

    if take():
        return events
    async for chunk in resp.content.iter_any():
        state.buffer += state.decoder.decode(chunk)
        while "\n\n" in state.buffer:
            block, state.buffer = state.buffer.split("\n\n", 1)
            state.pending.extend(parse_sse(block + "\n\n")[0])
        if take():
            return events
    return events
