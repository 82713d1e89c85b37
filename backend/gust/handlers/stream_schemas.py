"""Schemas of what the streaming endpoints send, for the OpenAPI document.

A generation's stream (`/chat/stream`, `/api/chats/{id}/events`) is a sequence of events;
each is one JSON object whose `type` names it (services/events.py): in SSE the `data:` of
an event whose `event:` is that type, in NDJSON one line (with the event's `id` added, and
`{"type": "ping"}` lines during silence, where SSE sends `: ping` comments). `StreamEvent`
is their union, discriminated by `type`. `/v1/chat/completions` with `stream: true` sends
OpenAI's chunks as SSE `data:` lines, ending with `data: [DONE]`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from gust.handlers.routing import Media


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(
        None, description="NDJSON only: `<generation_id>:<seq>`, the SSE `id:` (for Last-Event-ID)"
    )


class AnswerUsageOut(BaseModel):
    """Tokens of one answer: as the provider reported them, else estimated."""

    model_config = ConfigDict(extra="forbid")
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = Field(None, description="In the currency of the model's prices; absent without")
    estimated: bool | None = Field(None, description="True when Gust estimated the counts")


class StartEvent(_Event):
    """The answer began: where it is stored."""

    type: Literal["start"]
    chat_id: str
    message_id: str
    user_message_id: str | None
    generation_id: str
    parent_id: str | None
    model: str
    continues: str | None = Field(
        None,
        description="set when the answer continues a stored one (POST .../continue): the text "
        "it had; the deltas that follow are appended to it",
    )


class StatusEvent(_Event):
    """Progress of a step before or during the answer (research, a webhook agent's wait)."""

    type: Literal["status"]
    stage: str = Field(description="e.g. searching, fetching, extracting, ranking, upstream")
    detail: str
    done: bool


class ReasoningEvent(_Event):
    """A piece of the model's reasoning (reasoning models)."""

    type: Literal["reasoning"]
    delta: str


class DeltaEvent(_Event):
    """A piece of the answer's text."""

    type: Literal["delta"]
    delta: str


class ResyncEvent(_Event):
    """The answer's whole text so far, from the store: it replaces what the client has shown.

    Sent instead of events that are gone (a resume after the log expired, a log lost with
    Redis, a server that died while answering), then the stream goes on or ends.
    """

    type: Literal["resync"]
    message_id: str
    content: str
    reasoning: str | None


class SourceOut(BaseModel):
    """A source the answer may cite as [n]."""

    model_config = ConfigDict(extra="allow")
    n: int
    url: str | None = None
    title: str | None = None


class SourcesEvent(_Event):
    """The sources research put in the model's context."""

    type: Literal["sources"]
    sources: list[SourceOut]


class UsageEvent(_Event):
    """The answer's usage, just before `done`."""

    type: Literal["usage"]
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = None
    estimated: bool | None = None


class ErrorEvent(_Event):
    """Why the answer failed (just before `done`)."""

    type: Literal["error"]
    code: str
    message: str
    retryable: bool
    retry_after: float | None = Field(None, description="The provider's Retry-After, in seconds")


class DoneEvent(_Event):
    """The last event of every stream."""

    type: Literal["done"]
    message_id: str
    status: Literal["complete", "stopped", "error", "interrupted", "streaming"]
    finish_reason: str | None
    usage: AnswerUsageOut | None


class PingEvent(BaseModel):
    """NDJSON only: a keep-alive line during silence (SSE sends a `: ping` comment)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["ping"]


StreamEventUnion = Annotated[
    StartEvent
    | StatusEvent
    | ReasoningEvent
    | DeltaEvent
    | ResyncEvent
    | SourcesEvent
    | UsageEvent
    | ErrorEvent
    | DoneEvent
    | PingEvent,
    Field(discriminator="type"),
]


class StreamEvent(RootModel[StreamEventUnion]):
    """One event of a generation's stream, told apart by `type`."""


# -- /v1/chat/completions --------------------------------------------------------------
class CompletionUsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChunkDeltaOut(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    reasoning_content: str | None = None


class ChunkChoiceOut(BaseModel):
    index: int
    delta: ChunkDeltaOut
    finish_reason: str | None


class ChatCompletionChunkOut(BaseModel):
    """One chunk of a streamed completion (OpenAI's `chat.completion.chunk`)."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoiceOut]
    usage: CompletionUsageOut | None = Field(
        None, description="With stream_options.include_usage: null, then the totals in a last chunk"
    )


class OpenAIErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ChunkErrorOut(BaseModel):
    """A failure mid-stream: OpenAI's clients raise on a chunk carrying `error`."""

    error: OpenAIErrorBody


class CompletionStreamItem(RootModel[ChatCompletionChunkOut | ChunkErrorOut]):
    """One `data:` line of a streamed completion (the last one is the text `[DONE]`)."""


class CompletionMessageOut(BaseModel):
    role: Literal["assistant"]
    content: str
    reasoning_content: str | None = None


class CompletionChoiceOut(BaseModel):
    index: int
    message: CompletionMessageOut
    finish_reason: str


class ChatCompletionOut(BaseModel):
    """A completion (OpenAI's `chat.completion`)."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[CompletionChoiceOut]
    usage: CompletionUsageOut


GENERATION_STREAM = Media(
    "The generation's events: SSE by default, NDJSON with `Accept: application/x-ndjson`",
    {"text/event-stream": StreamEvent, "application/x-ndjson": StreamEvent},
)
COMPLETION = Media(
    "A completion; with `stream: true`, server-sent events of completion chunks ending with [DONE]",
    {"application/json": ChatCompletionOut, "text/event-stream": CompletionStreamItem},
    sse_final="[DONE]",
)
