"""A generation's event log, kept compact, and its two wire forms (SSE and NDJSON).

Most of a generation's events are answer deltas, so the log stores a delta as its
text alone (a `str`; a reasoning delta as `ReasoningText`) and any other event as an
`Event`. A delta costs its text plus one list slot, and the text object is the same
one the job joins into the stored answer: one long answer no longer holds an event
dict, an event object and cached bytes per token. Wire forms are encoded when
written, straight from the text (json's C string encoder, no intermediate dict).
"""

from __future__ import annotations

import json
from typing import Any, Literal

# JSON string literal, non-ASCII kept (as json.dumps(..., ensure_ascii=False)).
_json_str = json.encoder.encode_basestring
_compact_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

Format = Literal["sse", "ndjson"]
_SSE_DELTA = '\nevent: delta\ndata: {"type":"delta","delta":'
_SSE_REASONING = '\nevent: reasoning\ndata: {"type":"reasoning","delta":'


def compact(value: Any) -> str:
    return _compact_encoder.encode(value)


class ReasoningText(str):
    """A logged reasoning delta: a `str`, told apart from an answer delta by its type."""

    __slots__ = ()


class Event:
    """One event of a generation; `data` is the JSON object clients receive."""

    __slots__ = ("generation_id", "seq", "type", "data")

    def __init__(self, generation_id: str, seq: int, data: dict[str, Any]) -> None:
        self.generation_id = generation_id
        self.seq = seq
        self.type: str = data["type"]
        self.data = data

    @property
    def id(self) -> str:
        return f"{self.generation_id}:{self.seq}"

    def sse(self) -> bytes:
        return f"id: {self.id}\nevent: {self.type}\ndata: {compact(self.data)}\n\n".encode()

    def ndjson(self) -> bytes:
        return (compact({**self.data, "id": self.id}) + "\n").encode()

    def encode(self, fmt: Format) -> bytes:
        return self.sse() if fmt == "sse" else self.ndjson()

    @property
    def terminal(self) -> bool:
        return self.type == "done"


LogEntry = Event | str  # a str is a delta (ReasoningText: a reasoning delta)


def materialize(generation_id: str, seq: int, entry: LogEntry) -> Event:
    if isinstance(entry, Event):
        return entry
    kind = "reasoning" if isinstance(entry, ReasoningText) else "delta"
    return Event(generation_id, seq, {"type": kind, "delta": str(entry)})


def encode(generation_id: str, first_seq: int, entries: list[LogEntry], fmt: Format) -> bytes:
    """The wire form of consecutive log entries, the first of which has `first_seq`."""
    out: list[str] = []
    seq = first_seq
    if fmt == "sse":
        for entry in entries:
            if isinstance(entry, Event):
                out.append(f"id: {generation_id}:{seq}\nevent: {entry.type}\ndata: {compact(entry.data)}\n\n")
            else:
                head = _SSE_REASONING if isinstance(entry, ReasoningText) else _SSE_DELTA
                out.append(f"id: {generation_id}:{seq}{head}{_json_str(entry)}}}\n\n")
            seq += 1
    else:
        for entry in entries:
            if isinstance(entry, Event):
                out.append(compact({**entry.data, "id": f"{generation_id}:{seq}"}) + "\n")
            else:
                kind = "reasoning" if isinstance(entry, ReasoningText) else "delta"
                text = _json_str(entry)
                out.append(f'{{"type":"{kind}","delta":{text},"id":"{generation_id}:{seq}"}}\n')
            seq += 1
    return "".join(out).encode()
