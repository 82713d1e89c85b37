"""The OpenAPI 3.1 document, built from the route table and each handler's `api` operations."""

from __future__ import annotations

import re
from typing import Any

import pydantic
from tornado.routing import Rule

from gust import __version__
from gust.handlers.routing import Media, Op, implemented_methods, operations
from gust.handlers.schemas import ErrorOut

_ERRORS = {
    400: "Malformed request (e.g. invalid JSON)",
    401: "Authentication required or invalid (public routes too: an Authorization header that is not valid)",
    403: "Not allowed (role), or a cross-site request refused (CSRF)",
    404: "Not found (or not yours)",
    413: "Body too large",
    422: "Invalid field",
    429: "Rate limited",
    503: "Overloaded or a dependency is down",
}


def _ref(model: type[Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """A component named after the model (or TypedDict, as the stream events are), and its parts."""
    template = "#/components/schemas/{model}"
    if isinstance(model, type) and issubclass(model, pydantic.BaseModel):
        schema = model.model_json_schema(ref_template=template)
    else:
        schema = pydantic.TypeAdapter(model).json_schema(ref_template=template)
    for name, sub in [*schema.pop("$defs", {}).items(), (model.__name__, schema)]:
        if schemas.get(name, sub) != sub:
            # Two models with one name would silently share (the last) schema.
            raise ValueError(f"two different OpenAPI schemas are named {name}")
        schemas[name] = sub
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _sse_event(data: dict[str, Any], final: str | None) -> dict[str, Any]:
    """One server-sent event (its `event`, `id` and `data` fields) whose data is JSON of the
    `data` schema: OpenAPI 3.2's reading of a text/event-stream schema, which validators and
    fuzzers (schemathesis) apply to 3.1 documents too."""
    payload: dict[str, Any] = {
        "type": "string", "contentMediaType": "application/json", "contentSchema": data
    }
    if final is not None:
        payload = {"anyOf": [{"const": final}, payload]}
    return {
        "type": "object",
        "required": ["data"],
        "properties": {
            "event": {"type": "string"},
            "id": {"type": "string"},
            "retry": {"type": "integer"},
            "data": payload,
        },
    }


def _params(template: str, op: Op, schemas: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for segment in template.split("/"):
        if segment.startswith("{") and segment.endswith("}"):
            params.append(
                {"name": segment[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            )
    if op.query is not None:
        schema = op.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, prop in schema.get("properties", {}).items():
            params.append({"name": name, "in": "query", "required": name in required, "schema": prop})
    return params


def build_openapi(rules: list[Rule]) -> dict[str, Any]:
    """An OpenAPI 3.1 document covering every rule that declares a template."""
    schemas: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    error_ref = _ref(ErrorOut, schemas)
    operation_ids: set[str] = set()
    for rule in rules:
        template = getattr(rule, "template", None)
        handler = rule.target
        if template is None or not isinstance(handler, type):
            continue
        ops = operations(handler)
        item = paths.setdefault(template, {})
        public = not getattr(handler, "auth_required", True)  # still 401 for a bad Authorization
        for method in implemented_methods(handler):
            op = ops.get(method)
            if op is None:
                continue  # the route test reports undocumented methods
            responses: dict[str, Any] = {}
            for status, model in op.responses.items():
                if model is None and status >= 400:  # every API error has the error body
                    responses[str(status)] = {
                        "description": _ERRORS.get(status, "Error"),
                        "content": {"application/json": {"schema": error_ref}},
                    }
                elif model is None:
                    responses[str(status)] = {"description": "No body"}
                elif isinstance(model, Media):
                    responses[str(status)] = {
                        "description": model.description,
                        "content": {
                            media: {"schema": _sse_event(_ref(schema, schemas), model.sse_final)
                                    if media == "text/event-stream" else _ref(schema, schemas)}
                            for media, schema in model.content.items()
                        },
                    }
                elif isinstance(model, str):
                    media = model.split(";")[0]
                    kind = "object" if media.endswith("json") else "string"
                    responses[str(status)] = {
                        "description": model,
                        "content": {media: {"schema": {"type": kind}}},
                    }
                else:
                    responses[str(status)] = {
                        "description": model.__doc__.strip().splitlines()[0]
                        if model.__doc__ and model.__module__.startswith("gust")
                        else model.__name__,
                        "content": {"application/json": {"schema": _ref(model, schemas)}},
                    }
            for status, text in _ERRORS.items():
                responses.setdefault(
                    str(status),
                    {"description": text, "content": {"application/json": {"schema": error_ref}}},
                )
            responses.setdefault(
                "500",
                {"description": "Unexpected error", "content": {"application/json": {"schema": error_ref}}},
            )
            operation_id = f"{method}_{handler.__name__}"
            if operation_id in operation_ids:  # one handler class serving several routes
                operation_id += "_" + re.sub(r"[^A-Za-z0-9]+", "_", template).strip("_")
            operation_ids.add(operation_id)
            operation: dict[str, Any] = {
                "summary": op.summary,
                "operationId": operation_id,
                "tags": list(op.tags),
                "parameters": _params(template, op, schemas),
                "responses": responses,
            }
            if op.body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(op.body, schemas)}},
                }
            elif op.body_media is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {media: {"schema": schema} for media, schema in op.body_media.items()},
                }
            if public:
                operation["security"] = []
            item[method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Gust API",
            "version": __version__,
            "description": "Self-hosted AI chat server. Authenticate with `Authorization: Bearer "
            "<access_token>` (from /api/auth/login), `Authorization: Bearer gust_...` (an API key "
            "from /api/auth/api-keys), or the session cookie; cookie-authenticated POST, PUT, PATCH "
            "and DELETE requests must echo the `gust_csrf` cookie in an `X-CSRF-Token` header.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "gust_access"},
            },
        },
        "security": [{"bearer": []}, {"cookie": []}],
    }
