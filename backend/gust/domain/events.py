"""The events a generation's stream sends (SSE and NDJSON), defined once.

Each event is a JSON object whose `type` names it. The TypedDicts below are the events'
shape for mypy and, through pydantic (handlers/stream_schemas.py), for the OpenAPI
document: their class names are the document's component names, which the frontend's
generated types use. At run time an event is a plain dict built by the functions below
(no model object per event: the hot path logs an answer delta as its bare text and
encodes it straight to the wire, services/events.py).
"""

from __future__ import annotations

from typing import (
    Annotated,
    Any,
    Literal,
    NotRequired,  # pydantic needs these on Python < 3.12
)

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

_STRICT = ConfigDict(extra="forbid")
_NDJSON_ID = Field(description="NDJSON only: `<stream>:<seq>`, the SSE `id:` (send it back as Last-Event-ID)")
_ALIAS = Field(description="deprecated alias of message_id (same value); will be removed", deprecated=True)

AnswerStatus = Literal["complete", "stopped", "error", "interrupted", "streaming"]


@with_config(ConfigDict(extra="allow"))
class SourceOut(TypedDict):
    """A source the answer may cite as [n]."""

    n: int
    url: NotRequired[str | None]
    title: NotRequired[str | None]


@with_config(_STRICT)
class AnswerUsageOut(TypedDict):
    """Tokens of one answer: as the provider reported them, else estimated."""

    prompt_tokens: int
    completion_tokens: int
    cost: NotRequired[Annotated[float | None, Field(description="In the currency of the model's prices")]]
    estimated: NotRequired[Annotated[bool | None, Field(description="True when Gust estimated the counts")]]


@with_config(_STRICT)
class StartEvent(TypedDict):
    """The answer began: where it is stored."""

    type: Literal["start"]
    chat_id: str
    message_id: str
    user_message_id: str | None
    generation_id: Annotated[str, _ALIAS]
    parent_id: str | None
    model: str
    continues: NotRequired[
        Annotated[
            str | None,
            Field(
                description="set when the answer continues a stored one (POST .../continue): the "
                "text it had; the deltas that follow are appended to it"
            ),
        ]
    ]
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class StatusEvent(TypedDict):
    """Progress of a step before or during the answer (research, a webhook agent's wait)."""

    type: Literal["status"]
    stage: Annotated[str, Field(description="e.g. searching, fetching, extracting, ranking, upstream, store")]
    detail: str
    done: bool
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class ReasoningEvent(TypedDict):
    """A piece of the model's reasoning (reasoning models)."""

    type: Literal["reasoning"]
    delta: str
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class DeltaEvent(TypedDict):
    """A piece of the answer's text."""

    type: Literal["delta"]
    delta: str
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class ResyncEvent(TypedDict):
    """The answer's whole text so far, from the store: it replaces what the client has shown.

    Sent instead of events that are gone (a resume after the log expired, a log lost with
    Redis, a server that died while answering), then the stream goes on or ends.
    """

    type: Literal["resync"]
    message_id: str
    content: str
    reasoning: str | None
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class SourcesEvent(TypedDict):
    """The sources research put in the model's context."""

    type: Literal["sources"]
    sources: list[SourceOut]
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class UsageEvent(TypedDict):
    """The answer's usage, just before `done`."""

    type: Literal["usage"]
    prompt_tokens: int
    completion_tokens: int
    cost: NotRequired[float | None]
    estimated: NotRequired[bool | None]
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class ErrorEvent(TypedDict):
    """Why the answer failed (just before `done`)."""

    type: Literal["error"]
    code: str
    message: str
    retryable: bool
    retry_after: NotRequired[Annotated[float | None, Field(description="The provider's Retry-After, in s")]]
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class DoneEvent(TypedDict):
    """The last event of every stream."""

    type: Literal["done"]
    message_id: str
    status: AnswerStatus
    finish_reason: str | None
    usage: AnswerUsageOut | None
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class ToolCallEvent(TypedDict):
    """The model called a tool (one event per call; parallel calls come together)."""

    type: Literal["tool_call"]
    call_id: str
    name: Annotated[str, Field(description="Gust's name of the tool (e.g. current_time)")]
    arguments: Annotated[str, Field(description="The arguments as the model wrote them (JSON text)")]
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class ToolResultEvent(TypedDict):
    """A tool call ended: its result (an error message when `ok` is false), cut to a preview."""

    type: Literal["tool_result"]
    call_id: str
    ok: bool
    content: Annotated[str, Field(description="The result's first characters (what the answer stores)")]
    elapsed_ms: int
    id: NotRequired[Annotated[str, _NDJSON_ID]]


@with_config(_STRICT)
class PingEvent(TypedDict):
    """NDJSON only: a keep-alive line during silence (SSE sends a `: ping` comment)."""

    type: Literal["ping"]


# A generation's stream: what /chat/stream and /api/chats/{id}/events send.
StreamEventUnion = Annotated[
    StartEvent
    | StatusEvent
    | ReasoningEvent
    | DeltaEvent
    | ResyncEvent
    | SourcesEvent
    | ToolCallEvent
    | ToolResultEvent
    | UsageEvent
    | ErrorEvent
    | DoneEvent
    | PingEvent,
    Field(discriminator="type"),
]
# Any event a job logs (what Generation.emit takes).
AnswerEvent = (
    StartEvent
    | StatusEvent
    | ResyncEvent
    | SourcesEvent
    | ToolCallEvent
    | ToolResultEvent
    | UsageEvent
    | ErrorEvent
    | DoneEvent
)


@with_config(_STRICT)
class TitleEventOut(TypedDict):
    """A chat got its title (the sidebar shows it at once): GET /api/events."""

    type: Literal["title"]
    chat_id: str
    title: str


# Keep-alives during silence: an SSE comment, an NDJSON line (PingEvent).
PING_SSE = b": ping\n\n"
PING_NDJSON = b'{"type":"ping"}\n'


def start_event(
    *,
    chat_id: str,
    message_id: str,
    user_message_id: str | None,
    parent_id: str | None,
    model: str,
    continues: str | None = None,
) -> StartEvent:
    event = StartEvent(
        type="start",
        chat_id=chat_id,
        message_id=message_id,
        user_message_id=user_message_id,
        generation_id=message_id,  # the deprecated alias, one release
        parent_id=parent_id,
        model=model,
    )
    if continues is not None:
        event["continues"] = continues
    return event


def status_event(stage: str, detail: str, done: bool) -> StatusEvent:
    return StatusEvent(type="status", stage=stage, detail=detail, done=done)


def delta_event(text: str, *, reasoning: bool = False) -> DeltaEvent | ReasoningEvent:
    """An answer (or reasoning) delta as a dict: for the bus and tests; the push path
    encodes deltas from their bare text (services/events.py)."""
    if reasoning:
        return ReasoningEvent(type="reasoning", delta=text)
    return DeltaEvent(type="delta", delta=text)


def resync_event(message_id: str, content: str, reasoning: str | None) -> ResyncEvent:
    return ResyncEvent(type="resync", message_id=message_id, content=content, reasoning=reasoning or None)


def sources_event(sources: list[dict[str, Any]]) -> SourcesEvent:
    return SourcesEvent(type="sources", sources=sources)  # type: ignore[typeddict-item]


def tool_call_event(call_id: str, name: str, arguments: str) -> ToolCallEvent:
    return ToolCallEvent(type="tool_call", call_id=call_id, name=name, arguments=arguments)


def tool_result_event(call_id: str, ok: bool, content: str, elapsed_ms: int) -> ToolResultEvent:
    return ToolResultEvent(type="tool_result", call_id=call_id, ok=ok, content=content, elapsed_ms=elapsed_ms)


def usage_event(usage: dict[str, Any]) -> UsageEvent:
    """The answer's usage (prompt_tokens, completion_tokens, cost?, estimated?)."""
    return {"type": "usage", **usage}  # type: ignore[typeddict-item]


def error_event(code: str, message: str, retryable: bool, retry_after: float | None = None) -> ErrorEvent:
    event = ErrorEvent(type="error", code=code, message=message, retryable=retryable)
    if retry_after is not None:
        event["retry_after"] = retry_after
    return event


def done_event(
    message_id: str, status: str, finish_reason: str | None, usage: dict[str, Any] | None
) -> DoneEvent:
    return DoneEvent(
        type="done",
        message_id=message_id,
        status=status,  # type: ignore[typeddict-item]
        finish_reason=finish_reason,
        usage=usage,  # type: ignore[typeddict-item]
    )


def title_event(chat_id: str, title: str) -> TitleEventOut:
    return TitleEventOut(type="title", chat_id=chat_id, title=title)
