"""TypeScript types of the stream events, generated from the OpenAPI document.

The frontend reads a generation's stream (`StreamEvent`, the union published in
`components.schemas`) and the user's notifications (`GET /api/events`). Their types in
`frontend/src/lib/events.gen.ts` are written by this module from the document the app
serves, built in-process (no server, no network), so they cannot drift from the backend
unnoticed: tests/unit/test_event_types_drift.py regenerates and compares.

    PYTHONPATH=backend python -m gust.codegen.event_types          # rewrite the file
    PYTHONPATH=backend python -m gust.codegen.event_types --check  # exit 1 on a difference

Only the JSON Schema the OpenAPI builder emits for pydantic models is supported (objects,
maps, `$ref`, `const`, `enum`, `anyOf`/`oneOf`, a one-element `allOf`, arrays, tuples,
scalars); anything else is an error rather than a silent `unknown`.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import sys
from pathlib import Path
from typing import Any

from tornado.routing import Rule

OUTPUT = Path(__file__).resolve().parents[3] / "frontend" / "src" / "lib" / "events.gen.ts"
COMMAND = "PYTHONPATH=backend python -m gust.codegen.event_types"
STREAM_UNION = "StreamEvent"  # the component every generation stream's events validate against
USER_EVENTS_PATH = "/api/events"

Schema = dict[str, Any]


class UnsupportedSchema(ValueError):
    """A schema construct the generator does not translate."""


def _api_rules() -> list[Rule]:
    """The app's API route table: `api_handlers()` of gust.routes, or of gust.app where the
    route table lived before the runtime work of issue 22 (either may be the one present)."""
    for module_name in ("gust.routes", "gust.app"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        handlers = getattr(module, "api_handlers", None)
        if callable(handlers):
            return list(handlers())
    raise RuntimeError("no api_handlers() in gust.routes or gust.app")


def build_document() -> dict[str, Any]:
    """The OpenAPI document of the app's API routes, as /api/openapi.json serves it."""
    from gust.handlers.openapi_doc import build_openapi

    return build_openapi(_api_rules())


def _ref_name(ref: str) -> str:
    prefix = "#/components/schemas/"
    if not ref.startswith(prefix):
        raise UnsupportedSchema(f"a $ref outside components.schemas: {ref}")
    return ref[len(prefix):]


def sse_data_schema(document: dict[str, Any], path: str) -> Schema:
    """The schema of the JSON in the `data:` of the events GET `path` sends."""
    content = document["paths"][path]["get"]["responses"]["200"]["content"]
    data: Schema = content["text/event-stream"]["schema"]["properties"]["data"]
    alternatives: list[Schema] = data.get("anyOf", [data])
    return next(alt["contentSchema"] for alt in alternatives if "contentSchema" in alt)


def _literal(value: Any) -> str:
    if value is None or isinstance(value, bool | int | float | str):
        return json.dumps(value, ensure_ascii=False)
    raise UnsupportedSchema(f"a literal that is not a scalar: {value!r}")


def _comment(text: str, indent: str) -> list[str]:
    lines = [line.rstrip() for line in text.strip().replace("*/", "*\\/").splitlines()]
    if len(lines) == 1:
        return [f"{indent}/** {lines[0]} */"]
    return [f"{indent}/**", *(f"{indent} * {line}".rstrip() for line in lines), f"{indent} */"]


class _Writer:
    def __init__(self, schemas: dict[str, Schema]) -> None:
        self.schemas = schemas
        self.wanted: list[str] = []

    def need(self, name: str) -> str:
        if name not in self.schemas:
            raise UnsupportedSchema(f"no component named {name}")
        if name not in self.wanted:
            self.wanted.append(name)
        return name

    def type_of(self, schema: Schema, indent: str) -> str:
        if "$ref" in schema:
            return self.need(_ref_name(schema["$ref"]))
        if "const" in schema:
            return _literal(schema["const"])
        if "enum" in schema:
            return " | ".join(_literal(v) for v in schema["enum"])
        if "allOf" in schema:
            if len(schema["allOf"]) != 1:
                raise UnsupportedSchema(f"an allOf of several schemas: {json.dumps(schema)}")
            return self.type_of(schema["allOf"][0], indent)  # a $ref with its own description
        for key in ("anyOf", "oneOf"):
            if key in schema:
                parts: list[str] = []
                for alt in schema[key]:
                    part = self.type_of(alt, indent)
                    if part not in parts:
                        parts.append(part)
                return " | ".join(parts)
        kind = schema.get("type")
        if isinstance(kind, list):
            return " | ".join(self.type_of({**schema, "type": k}, indent) for k in kind)
        if kind == "string":
            return "string"
        if kind in ("integer", "number"):
            return "number"
        if kind == "boolean":
            return "boolean"
        if kind == "null":
            return "null"
        if kind == "array" and "prefixItems" in schema:  # a tuple
            return "[" + ", ".join(self.type_of(item, indent) for item in schema["prefixItems"]) + "]"
        if kind == "array":
            item = self.type_of(schema.get("items", {}), indent) if schema.get("items") else "unknown"
            return f"Array<{item}>"
        if kind == "object":
            return self.object_body(schema, indent)
        if not schema:
            return "unknown"
        raise UnsupportedSchema(f"a schema the generator cannot translate: {json.dumps(schema)}")

    def object_body(self, schema: Schema, indent: str) -> str:
        properties: dict[str, Schema] = schema.get("properties", {})
        required = set(schema.get("required", []))
        inner = indent + "  "
        lines = ["{"]
        for name, prop in properties.items():
            notes = [prop["description"]] if prop.get("description") else []
            if prop.get("deprecated"):
                notes.append("@deprecated")
            if notes:
                lines.extend(_comment("\n".join(notes), inner))
            optional = "" if name in required else "?"
            key = name if name.isidentifier() else json.dumps(name)
            lines.append(f"{inner}{key}{optional}: {self.type_of(prop, inner)};")
        extra = schema.get("additionalProperties")
        if extra is True or (isinstance(extra, dict) and not extra):
            lines.append(f"{inner}[key: string]: unknown;")
        elif isinstance(extra, dict):
            lines.append(f"{inner}[key: string]: {self.type_of(extra, inner)};")
        lines.append(f"{indent}}}")
        return "\n".join(lines) if properties or extra not in (None, False) else "Record<string, never>"

    def declaration(self, name: str) -> list[str]:
        schema = self.schemas[name]
        lines = _comment(schema["description"], "") if schema.get("description") else []
        if schema.get("type") == "object" and "properties" in schema:
            lines.append(f"export interface {name} {self.object_body(schema, '')}")
        else:
            lines.append(f"export type {name} = {self.type_of(schema, '')};")
        return lines


def _union_members(schema: Schema) -> list[str]:
    members = schema.get("oneOf") or schema.get("anyOf")
    if members is None:
        return [_ref_name(schema["$ref"])] if "$ref" in schema else []
    return [_ref_name(alt["$ref"]) for alt in members]


def _types_of(schemas: dict[str, Schema], members: list[str]) -> list[str]:
    return [schemas[name]["properties"]["type"]["const"] for name in members]


def render(document: dict[str, Any]) -> str:
    """The text of events.gen.ts for this OpenAPI document."""
    schemas: dict[str, Schema] = document["components"]["schemas"]
    writer = _Writer(schemas)
    stream_members = _union_members(schemas[STREAM_UNION])
    user_data = sse_data_schema(document, USER_EVENTS_PATH)
    user_members = _union_members(user_data)
    for name in [STREAM_UNION, *stream_members, *user_members]:
        writer.need(name)
    user_type = writer.type_of(user_data, "")
    out = [
        f"// Generated by `{COMMAND}` from the OpenAPI document",
        "// (components.schemas). Do not edit: change the backend's models and run it again;",
        "// tests/unit/test_event_types_drift.py fails while this file and the backend disagree.",
        "",
    ]
    done: set[str] = set()
    index = 0
    while index < len(writer.wanted):  # declarations may pull in more components
        name = writer.wanted[index]
        index += 1
        if name not in done:
            done.add(name)
            out.extend([*writer.declaration(name), ""])
    out.extend(
        [
            "/** One notification of the signed-in user's stream (GET /api/events). */",
            f"export type UserEvent = {user_type};",
            "",
            "/** Every `type` of a generation's stream, as the server sends them. */",
            f"export const STREAM_EVENT_TYPES = {json.dumps(_types_of(schemas, stream_members))} as const;",
            "",
            "/** Every `type` of the user's notifications. */",
            f"export const USER_EVENT_TYPES = {json.dumps(_types_of(schemas, user_members))} as const;",
            "",
        ]
    )
    return "\n".join(out)


def difference(committed: str, fresh: str) -> str:
    """A unified diff from the committed file to the fresh one ('' when they agree)."""
    return "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            fresh.splitlines(keepends=True),
            fromfile="frontend/src/lib/events.gen.ts (committed)",
            tofile="frontend/src/lib/events.gen.ts (from the backend schema)",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 when the file is out of date")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    fresh = render(build_document())
    if args.check:
        committed = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        diff = difference(committed, fresh)
        sys.stdout.write(diff)
        return 1 if diff else 0
    args.output.write_text(fresh, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
