"""The stream's events are defined once (domain/events.py): what the constructors build and
what the hot path writes from bare text both validate against the published schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator

from gust.domain.events import (
    PING_NDJSON,
    delta_event,
    done_event,
    error_event,
    resync_event,
    sources_event,
    start_event,
    status_event,
    title_event,
    usage_event,
)
from gust.handlers.stream_schemas import StreamEvent
from gust.services.events import Event, ReasoningText, encode

EVENTS: list[Any] = [
    start_event(chat_id="c", message_id="m", user_message_id="u", parent_id="u", model="x"),
    start_event(chat_id="c", message_id="m", user_message_id=None, parent_id=None, model="x", continues="."),
    status_event("searching", "2 results", True),
    delta_event("text"),
    delta_event("thinking", reasoning=True),
    resync_event("m", "all of it", None),
    sources_event([{"n": 1, "url": "https://example.com/", "title": "Example", "kind": "web"}]),
    usage_event({"prompt_tokens": 3, "completion_tokens": 4, "estimated": True}),
    error_event("upstream_error", "the provider failed", True, retry_after=2.0),
    error_event("internal_error", "the answer failed; try again", True),
    done_event("m", "complete", "stop", {"prompt_tokens": 3, "completion_tokens": 4}),
    done_event("m", "interrupted", None, None),
]


@pytest.fixture(scope="module")
def validator() -> OAS31Validator:
    schema = StreamEvent.model_json_schema(ref_template="#/$defs/{model}")
    return OAS31Validator(schema)


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: str(e["type"]))
def test_every_constructed_event_validates(validator: OAS31Validator, event: dict[str, Any]) -> None:
    assert [e.message for e in validator.iter_errors(event)] == []
    # NDJSON adds the event's id: still valid.
    line = json.loads(Event("g", 7, event).ndjson())
    assert line["id"] == "g:7"
    assert [e.message for e in validator.iter_errors(line)] == []


def test_a_wrong_event_does_not_validate(validator: OAS31Validator) -> None:
    assert list(validator.iter_errors({"type": "done", "message_id": "m", "status": "finished"}))
    assert list(validator.iter_errors({"type": "title", "chat_id": "c", "title": "t"}))


def test_deltas_written_from_bare_text_are_the_schema_events(validator: OAS31Validator) -> None:
    entries: list[Any] = ['a "quoted"\nline é', ReasoningText("why")]
    lines = encode("g", 1, entries, "ndjson").decode().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert parsed == [
        {**delta_event(entries[0]), "id": "g:1"},
        {**delta_event("why", reasoning=True), "id": "g:2"},
    ]
    assert [e.message for p in parsed for e in validator.iter_errors(p)] == []
    sse = encode("g", 1, entries, "sse").decode().split("\n\n")
    datas = [json.loads(block.split("data: ", 1)[1]) for block in sse if block]
    assert datas == [delta_event(entries[0]), delta_event("why", reasoning=True)]
    assert json.loads(PING_NDJSON) == {"type": "ping"}
    assert [e.message for e in validator.iter_errors(json.loads(PING_NDJSON))] == []


def test_the_start_event_names_the_answer_once_with_its_alias() -> None:
    start = start_event(chat_id="c", message_id="m", user_message_id=None, parent_id=None, model="x")
    assert start["message_id"] == start["generation_id"] == "m"
    assert title_event("c", "A title") == {"type": "title", "chat_id": "c", "title": "A title"}
