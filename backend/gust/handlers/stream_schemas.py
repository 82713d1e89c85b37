"""Schemas of what the streaming endpoints send, for the OpenAPI document.

A generation's stream (`/chat/stream`, `/api/chats/{id}/events`) is a sequence of events;
each is one JSON object whose `type` names it, defined once in domain/events.py: in SSE
the `data:` of an event whose `event:` is that type, in NDJSON one line (with the event's
`id` added, and `{"type": "ping"}` lines during silence, where SSE sends `: ping`
comments). `StreamEvent` is their union, discriminated by `type`; its members keep the
TypedDicts' names as component names. `/v1/chat/completions` with `stream: true` sends
OpenAI's chunks as SSE `data:` lines, ending with `data: [DONE]`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, RootModel

from gust.domain.events import StreamEventUnion
from gust.handlers.routing import Media


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
