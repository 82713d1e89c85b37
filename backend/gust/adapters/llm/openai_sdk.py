"""Non-streaming calls through the official `openai` package (titles and other short tasks).

The streaming hot path reads raw SSE instead (openai_compat.py): the SDK's per-chunk
objects cost about three times the CPU. For one short answer the SDK's retries and
typed errors are worth it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import openai

from gust.domain.errors import UpstreamError
from gust.ports.llm import ChatRequest

BaseUrl = str | Callable[[], Awaitable[str]]


class OpenAICompleter:
    """One OpenAI-compatible endpoint; the base URL may be resolved lazily (the local model)."""

    def __init__(
        self,
        base_url: BaseUrl,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        max_retries: int = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._base_url = base_url
        self._api_key = api_key
        self._timeout = timeout
        self._max_retries = max_retries
        self._headers = headers or {}
        self._client: openai.AsyncOpenAI | None = None

    async def _get_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            base = self._base_url if isinstance(self._base_url, str) else await self._base_url()
            self._client = openai.AsyncOpenAI(
                base_url=base,
                api_key=self._api_key or "unused",  # the SDK insists on a key; local servers ignore it
                timeout=self._timeout,
                max_retries=self._max_retries,
                default_headers=self._headers,
            )
        return self._client

    async def complete(self, request: ChatRequest) -> str:
        client = await self._get_client()
        try:
            reply = await client.chat.completions.create(
                model=request.model,
                messages=request.messages,  # type: ignore[arg-type]
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                extra_body=request.extra or None,
            )
        except openai.APIStatusError as exc:
            raise UpstreamError(
                f"the model provider answered HTTP {exc.status_code}",
                code="upstream_auth" if exc.status_code in (401, 403) else "upstream_error",
                retryable=exc.status_code == 429 or exc.status_code >= 500,
                upstream_status=exc.status_code,
            ) from None
        except openai.APITimeoutError:
            raise UpstreamError("the model provider did not answer in time", code="upstream_timeout",
                                retryable=True) from None
        except openai.APIConnectionError:
            raise UpstreamError("cannot connect to the model provider", code="upstream_unreachable",
                                retryable=True) from None
        except openai.APIError:  # e.g. a body that is not a chat completion
            raise UpstreamError(
                "the model provider sent an invalid answer", code="upstream_protocol"
            ) from None
        if not reply.choices:
            return ""
        return reply.choices[0].message.content or ""

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
