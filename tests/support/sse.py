"""A strict Server-Sent Events parser for tests (text in, events out)."""

from __future__ import annotations

import json
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


async def read_events(resp: aiohttp.ClientResponse, *, stop_after: int | None = None) -> list[SSEEvent]:
    """Read SSE events from a live response until `done` (or `stop_after` events)."""
    buffer = ""
    events: list[SSEEvent] = []
    decoder = __import__("codecs").getincrementaldecoder("utf-8")()
    async for chunk in resp.content.iter_any():
        buffer += decoder.decode(chunk)
        while "\n\n" in buffer:
            block, buffer = buffer.split("\n\n", 1)
            parsed, _ = parse_sse(block + "\n\n")
            for event in parsed:
                events.append(event)
                if event.event == "done" or (stop_after is not None and len(events) >= stop_after):
                    return events
    return events
