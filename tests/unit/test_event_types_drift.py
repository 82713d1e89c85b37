"""The frontend's event types cannot drift from the backend's schema.

`frontend/src/lib/events.gen.ts` is generated from the OpenAPI document the app serves
(gust/codegen/event_types.py); regenerating it must give the committed file, else the test
shows the diff and the command that fixes it. The examples the frontend's unit tests apply
(`frontend/src/lib/events.examples.json`) must cover every event type once and validate
against the published schemas.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS31Validator

from gust.codegen import event_types

EXAMPLES = Path(event_types.OUTPUT).with_name("events.examples.json")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return event_types.build_document()


def test_committed_event_types_match_the_backend_schema(document: dict[str, Any]) -> None:
    committed = event_types.OUTPUT.read_text(encoding="utf-8")
    diff = event_types.difference(committed, event_types.render(document))
    if diff:
        pytest.fail(
            "frontend/src/lib/events.gen.ts disagrees with the backend's event schema; "
            f"regenerate it with `{event_types.COMMAND}`:\n{diff}",
            pytrace=False,
        )


def _mapping(document: dict[str, Any], union: dict[str, Any]) -> dict[str, str]:
    """`type` → the $ref of its schema, for a union of events (or a single event)."""
    members = union.get("oneOf") or union.get("anyOf") or [union]
    schemas = document["components"]["schemas"]
    mapping: dict[str, str] = {}
    for member in members:
        ref: str = member["$ref"]
        name = ref.rsplit("/", 1)[1]
        mapping[schemas[name]["properties"]["type"]["const"]] = ref
    return mapping


@pytest.mark.parametrize("kind", ["stream", "user"])
def test_one_valid_example_per_event_type(document: dict[str, Any], kind: str) -> None:
    examples: list[dict[str, Any]] = json.loads(EXAMPLES.read_text(encoding="utf-8"))[kind]
    if kind == "stream":
        union = document["components"]["schemas"][event_types.STREAM_UNION]
    else:
        union = event_types.sse_data_schema(document, event_types.USER_EVENTS_PATH)
    mapping = _mapping(document, union)
    types = [example["type"] for example in examples]
    assert sorted(types) == sorted(mapping), f"{EXAMPLES.name}: exactly one example per {kind} event type"
    for example in examples:
        schema = {"$ref": mapping[example["type"]], "components": document["components"]}
        OAS31Validator(schema).validate(example)


def test_the_generator_reads_the_document_not_the_models(document: dict[str, Any]) -> None:
    """A field added to a published event shows up in the generated text (the diff the
    drift test prints), whatever module defines the models."""
    changed = json.loads(json.dumps(document))
    start = changed["components"]["schemas"]["StartEvent"]
    start["properties"]["extra_field"] = {"type": "integer", "description": "added"}
    start["required"].append("extra_field")
    diff = event_types.difference(event_types.render(document), event_types.render(changed))
    assert "+  extra_field: number;" in diff


def test_the_generator_translates_what_pydantic_emits() -> None:
    """Shapes later events may use (maps, tuples, a described $ref, enums, deprecation)
    come out as TypeScript; an unknown construct is an error, never a silent `unknown`."""
    document: dict[str, Any] = {
        "paths": {
            event_types.USER_EVENTS_PATH: {"get": {"responses": {"200": {"content": {"text/event-stream": {
                "schema": {"properties": {"data": {"contentSchema": {"$ref": "#/components/schemas/T"}}}}
            }}}}}}
        },
        "components": {"schemas": {
            event_types.STREAM_UNION: {"oneOf": [{"$ref": "#/components/schemas/E"}]},
            "E": {
                "type": "object",
                "required": ["type", "counts", "pair", "kind"],
                "properties": {
                    "type": {"const": "e"},
                    "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]},
                    "kind": {"allOf": [{"$ref": "#/components/schemas/Kind"}], "description": "which"},
                    "old": {"type": "string", "deprecated": True},
                },
            },
            "Kind": {"enum": ["a", "b"], "type": "string"},
            "T": {"type": "object", "required": ["type"], "properties": {"type": {"const": "t"}}},
        }},
    }
    text = event_types.render(document)
    for line in [
        "  counts: {\n    [key: string]: number;\n  };",
        "  pair: [string, number];",
        "  /** which */\n  kind: Kind;",
        "  /** @deprecated */\n  old?: string;",
        'export type Kind = "a" | "b";',
        'export const STREAM_EVENT_TYPES = ["e"] as const;',
    ]:
        assert line in text, line
    document["components"]["schemas"]["Kind"] = {"not": {"type": "string"}}
    with pytest.raises(event_types.UnsupportedSchema):
        event_types.render(document)
