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
from array import array
from bisect import bisect_right
from collections.abc import Mapping
from typing import Any, Literal

from gust.domain.events import delta_event

# JSON string literal, non-ASCII kept (as json.dumps(..., ensure_ascii=False)).
_json_str = json.encoder.encode_basestring
_compact_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

Format = Literal["sse", "ndjson"]
# The wire form of DeltaEvent and ReasoningEvent (domain/events.py), written straight from
# the text on the hot path; tests/unit/test_event_log.py checks they match.
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

    def __init__(self, generation_id: str, seq: int, data: Mapping[str, Any]) -> None:
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
    return Event(generation_id, seq, delta_event(str(entry), reasoning=isinstance(entry, ReasoningText)))


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


COMPACT_AT = 32  # deltas kept as separate objects before they are packed into the run
# A run grows up to this many characters, then the next one starts: it bounds the copy
# each pack makes (the whole run) and the size of the strings a growing run leaves freed.
RUN_CHARS = 16_384


class TextRun:
    """Consecutive deltas of one kind packed into one string and their end offsets.

    Packing costs about 4 bytes per delta beyond its text, against about 60 for a
    separate str object and its list slot: a long answer's log stays close to the size
    of its text. A run grows as more deltas are packed (one run per stretch of answer or
    reasoning, up to RUN_CHARS; not one per COMPACT_AT deltas), so its own overhead is
    paid about once.
    """

    __slots__ = ("text", "ends", "reasoning")

    def __init__(self, parts: list[str], reasoning: bool) -> None:
        self.text = "".join(parts)
        self.ends = array("I")
        end = 0
        for part in parts:
            end += len(part)
            self.ends.append(end)
        self.reasoning = reasoning

    def __len__(self) -> int:
        return len(self.ends)

    def extend(self, parts: list[str]) -> None:
        end = self.ends[-1]
        for part in parts:
            end += len(part)
            self.ends.append(end)
        self.text += "".join(parts)

    def part(self, i: int) -> str:
        start = self.ends[i - 1] if i else 0
        text = self.text[start : self.ends[i]]
        return ReasoningText(text) if self.reasoning else text


class EventLog:
    """A generation's events by sequence number (from 1): packed runs, then a short tail."""

    __slots__ = ("_blocks", "_block_first", "_tail", "_tail_first")

    def __init__(self) -> None:
        self._blocks: list[Event | TextRun] = []
        self._block_first: list[int] = []  # seq of each block's first event
        self._tail: list[LogEntry] = []
        self._tail_first = 1

    def __len__(self) -> int:
        return self._tail_first - 1 + len(self._tail)

    def append(self, entry: LogEntry) -> None:
        self._tail.append(entry)
        if len(self._tail) >= COMPACT_AT:
            self._pack()

    def _pack(self) -> None:
        seq = self._tail_first
        run: list[str] = []
        run_reasoning = False
        run_first = seq

        def flush() -> None:
            if not run:
                return
            last = self._blocks[-1] if self._blocks else None
            if isinstance(last, TextRun) and last.reasoning == run_reasoning and len(last.text) < RUN_CHARS:
                last.extend(run)  # the same stretch of text: its run goes on
            else:
                self._blocks.append(TextRun(run, run_reasoning))
                self._block_first.append(run_first)

        for entry in self._tail:
            if isinstance(entry, Event):
                flush()
                run = []
                self._blocks.append(entry)
                self._block_first.append(seq)
            else:
                reasoning = isinstance(entry, ReasoningText)
                if run and reasoning != run_reasoning:
                    flush()
                    run = []
                if not run:
                    run_reasoning, run_first = reasoning, seq
                run.append(entry)
            seq += 1
        flush()
        self._tail = []
        self._tail_first = seq

    def slice(self, after: int, limit: int) -> list[LogEntry]:
        """Up to `limit` entries with seq > after, in order."""
        end = min(len(self), after + limit)
        if after + 1 >= self._tail_first:  # the live case: only the tail
            return self._tail[after + 1 - self._tail_first : end + 1 - self._tail_first]
        out: list[LogEntry] = []
        seq = after + 1
        i = bisect_right(self._block_first, seq) - 1
        while seq <= end and i < len(self._blocks):
            block, first = self._blocks[i], self._block_first[i]
            if isinstance(block, Event):
                out.append(block)
                seq += 1
            else:
                stop = min(end, first + len(block) - 1)
                out.extend(block.part(s - first) for s in range(seq, stop + 1))
                seq = stop + 1
            i += 1
        if seq <= end:
            out.extend(self._tail[seq - self._tail_first : end + 1 - self._tail_first])
        return out

    def text(self, reasoning: bool = False) -> str:
        """All answer (or reasoning) deltas joined: what the stored message holds."""
        parts = [b.text for b in self._blocks if isinstance(b, TextRun) and b.reasoning == reasoning]
        parts += [
            e for e in self._tail if isinstance(e, str) and isinstance(e, ReasoningText) == reasoning
        ]
        return "".join(parts)
