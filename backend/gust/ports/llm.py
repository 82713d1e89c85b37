"""The LLM port: one streaming call, whatever the provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ChunkKind = Literal["delta", "reasoning", "usage", "finish", "status", "tool_delta", "tool_call"]


@dataclass(slots=True, frozen=True)
class ToolCall:
    """One complete function call the model asked for, assembled from its streamed fragments.

    `arguments` is the raw JSON text the model wrote (what is sent back to it in the
    assistant message); `error` says why it is not a JSON object (malformed, truncated),
    None when it is one. A call with an error is still reported: the caller answers it
    with a tool error, so the model can correct itself.
    """

    call_id: str
    name: str
    arguments: str
    index: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def message_part(self) -> dict[str, Any]:
        """The call as OpenAI's assistant message carries it (`tool_calls[i]`)."""
        return {
            "id": self.call_id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(slots=True)
class ChatRequest:
    """What a provider is asked: `model` is the provider's own model id."""

    model: str
    messages: list[dict[str, Any]]
    temperature: float | None = None
    max_tokens: int | None = None
    # Provider-specific fields sent as-is (e.g. {"thinking": {...}} for thinking models).
    extra: dict[str, Any] = field(default_factory=dict)
    # Function tools in OpenAI's shape ([{type: "function", function: {name, description,
    # parameters}}]) and the choice among them ("auto", "none", "required" or
    # {type: "function", function: {name}}). `messages` may then hold assistant messages
    # with `tool_calls` and `tool` messages ({role, tool_call_id, content}), sent as-is.
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None


@dataclass(slots=True)
class Chunk:
    """One step of a streamed answer.

    delta/reasoning carry `text`; usage carries `usage` ({prompt_tokens, completion_tokens});
    finish carries `finish_reason`; status carries `text` as a progress note (webhooks).
    tool_delta carries `tool_deltas`, the provider's `delta.tool_calls` list exactly as
    streamed (for relays such as /v1, which pass them on unchanged); tool_call carries one
    assembled `tool_call`. All tool_call chunks of an answer come together, in index order,
    just before its finish chunk (or at the end of the stream when there is none).
    """

    kind: ChunkKind
    text: str = ""
    usage: dict[str, int] | None = None
    finish_reason: str | None = None
    tool_deltas: list[dict[str, Any]] | None = None
    tool_call: ToolCall | None = None


class LLM(Protocol):
    """A chat model that streams. Failures raise gust.domain.errors.UpstreamError."""

    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Stream the answer; closing the iterator early closes the upstream connection."""
        ...
