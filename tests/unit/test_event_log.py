"""The compact event log: every seq replays exactly what was appended, packed or not."""

from __future__ import annotations

import random

from gust.services.events import (
    COMPACT_AT,
    RUN_CHARS,
    Event,
    EventLog,
    ReasoningText,
    TextRun,
    encode,
    materialize,
)


def build(n: int, seed: int) -> tuple[EventLog, list[object]]:
    rng = random.Random(seed)
    log, appended = EventLog(), []
    for seq in range(1, n + 1):
        roll = rng.random()
        if roll < 0.05:
            entry: object = Event("g", seq, {"type": "status", "n": seq})
        elif roll < 0.3:
            entry = ReasoningText(f"r{seq}é")
        else:
            entry = f"d{seq}\n\"{'😀' if seq % 7 == 0 else ''}"
        log.append(entry)  # type: ignore[arg-type]
        appended.append(entry)
    return log, appended


def test_every_slice_gives_back_what_was_appended() -> None:
    log, appended = build(COMPACT_AT * 5 + 7, seed=3)
    assert len(log) == len(appended)
    for after in range(0, len(appended) + 1, 5):
        for limit in (1, 3, COMPACT_AT + 1, 10_000):
            got = log.slice(after, limit)
            want = appended[after : after + limit]
            assert got == want
            assert [type(g) is ReasoningText for g in got] == [type(w) is ReasoningText for w in want]


def test_text_joins_answer_and_reasoning_apart() -> None:
    log, appended = build(COMPACT_AT * 3 + 11, seed=5)
    answer = "".join(e for e in appended if isinstance(e, str) and not isinstance(e, ReasoningText))
    reasoning = "".join(e for e in appended if isinstance(e, ReasoningText))
    assert log.text() == answer
    assert log.text(reasoning=True) == reasoning


def test_wire_forms_match_the_materialized_events() -> None:
    log, _ = build(COMPACT_AT * 2 + 3, seed=7)
    entries = log.slice(0, 10_000)
    events = [materialize("g", seq, e) for seq, e in enumerate(entries, 1)]
    assert encode("g", 1, entries, "sse") == b"".join(e.sse() for e in events)
    assert encode("g", 1, entries, "ndjson") == b"".join(e.ndjson() for e in events)


def test_a_long_answer_packs_into_one_run_per_stretch_of_text() -> None:
    log, appended = EventLog(), []
    for seq in range(1, COMPACT_AT * 12 + 6):
        entry = ReasoningText(f"r{seq}") if seq <= COMPACT_AT * 3 + 2 else f"d{seq}é"
        log.append(entry)
        appended.append(entry)
    # Packed so far: the reasoning run and the answer run (the rest is the live tail).
    assert [type(b).__name__ for b in log._blocks] == ["TextRun", "TextRun"]
    for after in range(0, len(appended) + 1, 7):
        assert log.slice(after, COMPACT_AT * 2 + 1) == appended[after : after + COMPACT_AT * 2 + 1]
    assert log.text() == "".join(e for e in appended if not isinstance(e, ReasoningText))
    assert log.text(reasoning=True) == "".join(e for e in appended if isinstance(e, ReasoningText))


def test_a_run_stops_growing_at_run_chars() -> None:
    log, appended = EventLog(), []
    part = "x" * 100 + "é"
    for _ in range(RUN_CHARS // len(part) * 3):
        log.append(part)
        appended.append(part)
    runs = [len(b.text) for b in log._blocks if isinstance(b, TextRun)]
    assert len(runs) == len(log._blocks)  # text only: every block is a run
    assert len(runs) >= 3 and all(n < RUN_CHARS + COMPACT_AT * len(part) for n in runs)
    assert log.slice(0, len(appended)) == appended
    assert log.text() == "".join(appended)
