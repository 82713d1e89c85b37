"""The LLM port: one streaming call, whatever the provider."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

ChunkKind = Literal["delta", "reasoning", "usage", "finish", "status"]


@dataclass(slots=True)
class ChatRequest:
    """What a provider is asked: `model` is the provider's own model id."""

    model: str
    messages: list[dict[str, Any]]
    temperature: float | None = None
    max_tokens: int | None = None
    # Provider-specific fields sent as-is (e.g. {"thinking": {...}} for thinking models).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Chunk:
    """One step of a streamed answer.

    delta/reasoning carry `text`; usage carries `usage` ({prompt_tokens, completion_tokens});
    finish carries `finish_reason`; status carries `text` as a progress note (webhooks).
    """

    kind: ChunkKind
    text: str = ""
    usage: dict[str, int] | None = None
    finish_reason: str | None = None


class LLM(Protocol):
    """A chat model that streams. Failures raise gust.domain.errors.UpstreamError."""

    def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        """Stream the answer; closing the iterator early closes the upstream connection."""
        ...
