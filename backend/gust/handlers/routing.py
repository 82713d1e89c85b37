"""Routes written once as OpenAPI-style templates, and the operations each handler serves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pydantic
from tornado.routing import Rule
from tornado.web import RequestHandler, url

_PARAM = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True, slots=True)
class Media:
    """A response with a schema per media type (a JSON answer or a stream of events)."""

    description: str
    # A model, or a TypedDict (domain/events.py): its name is the schema's component name.
    content: dict[str, type[pydantic.BaseModel] | type[Any]]
    # text/event-stream: a last `data:` that is not JSON (/v1's `[DONE]`).
    sse_final: str | None = None


@dataclass(frozen=True, slots=True)
class Op:
    """One documented operation: what it takes and what it answers."""

    summary: str
    body: type[pydantic.BaseModel] | None = None
    query: type[pydantic.BaseModel] | None = None
    # status -> response model; None means no JSON body; a str is a media type; Media: a
    # schema per media type (streams: the schema of each event).
    responses: dict[int, type[pydantic.BaseModel] | str | Media | None] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    # A body that is not one JSON model: media type -> JSON Schema (uploads, multipart).
    body_media: dict[str, dict[str, Any]] | None = None


def route(template: str, handler: type[RequestHandler], **kwargs: Any) -> Rule:
    """A Tornado rule from '/api/chats/{chat_id}'; path parameters become keyword arguments."""
    pattern = _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", template) + "$"
    rule = url(pattern, handler, kwargs or None)
    rule.template = template  # type: ignore[attr-defined]
    return rule


def operations(handler: type[RequestHandler]) -> dict[str, Op]:
    ops: dict[str, Op] = getattr(handler, "api", {})
    return ops


def implemented_methods(handler: type[RequestHandler]) -> list[str]:
    """HTTP methods a handler class actually overrides."""
    methods = []
    for name in ("get", "post", "put", "patch", "delete"):
        impl = getattr(handler, name, None)
        if impl is not None and impl is not getattr(RequestHandler, name):
            methods.append(name)
    return methods
