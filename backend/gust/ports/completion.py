"""Non-streaming completions for short background tasks (chat titles)."""

from __future__ import annotations

from typing import Protocol

from gust.ports.llm import ChatRequest


class Completer(Protocol):
    """Answers a request in one piece. Failures raise gust.domain.errors.UpstreamError."""

    async def complete(self, request: ChatRequest) -> str:
        """The answer's text (possibly empty)."""
        ...
