"""OpenAI-compatible chat completions, streamed.

The hot path reads the SSE body raw (line iterator, `json.loads`, pick the delta
fields): building the openai SDK's pydantic object per chunk costs about three times
the CPU (see bench/). Covers DeepSeek, OpenAI, Azure OpenAI, Moonshot/Kimi, GLM,
Gemini and Anthropic (their OpenAI-compatible endpoints), OpenRouter, Ollama, vLLM,
llama.cpp and the bundled local model.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from gust.adapters.llm.deadlines import Deadlines
from gust.adapters.llm.sessions import SessionPool
from gust.adapters.llm.tool_calls import ToolCallAssembler
from gust.domain.errors import UpstreamError
from gust.ports.llm import ChatRequest, Chunk

log = logging.getLogger(__name__)

MAX_COMPLETION_BYTES = 1 << 20  # a non-streaming answer (a title) is small

# What users read for each failure code: Gust's words, never the provider's.
_STATUS_MESSAGES: dict[str, str] = {
    "upstream_bad_request": "{who} refused the request",
    "upstream_auth": "{who} refused Gust's credentials (ask an admin to check the key)",
    "upstream_forbidden": "{who} refused access to this model",
    "upstream_not_found": "{who} does not know this model",
    "upstream_timeout": "{who} timed out",
    "upstream_conflict": "{who} could not handle the request right now",
    "upstream_too_large": "the conversation is too large for {who}",
    "upstream_rate_limited": "{who} is rate limiting requests; try again later",
    "upstream_unavailable": "{who} is unavailable; try again later",
    "upstream_error": "{who} failed to answer",
}

_STATUS_ERRORS: dict[int, tuple[str, bool]] = {
    400: ("upstream_bad_request", False),
    401: ("upstream_auth", False),
    403: ("upstream_forbidden", False),
    404: ("upstream_not_found", False),
    408: ("upstream_timeout", True),
    409: ("upstream_conflict", True),
    413: ("upstream_too_large", False),
    422: ("upstream_bad_request", False),
    429: ("upstream_rate_limited", True),
}


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


async def status_error(resp: aiohttp.ClientResponse, who: str = "the model provider") -> UpstreamError:
    """An UpstreamError for a non-2xx answer: Gust's message for users, the provider's own
    words in the server log (and `provider_message`) only."""
    try:
        body = await asyncio.wait_for(resp.content.read(4096), 5)
        detail = json.loads(body).get("error", {})
        message = detail.get("message") if isinstance(detail, dict) else str(detail)
    except (TimeoutError, ValueError, AttributeError, aiohttp.ClientError):
        message = None
    code, retryable = _STATUS_ERRORS.get(
        resp.status, ("upstream_unavailable", True) if resp.status >= 500 else ("upstream_error", False)
    )
    provider_message = str(message)[:1000] if message else None
    log.warning("%s (%s) answered HTTP %d: %s", who, resp.url.host, resp.status, provider_message or "-")
    template = _STATUS_MESSAGES.get(code, _STATUS_MESSAGES["upstream_error"])
    return UpstreamError(
        f"{template.format(who=who)} (HTTP {resp.status})",
        code=code,
        retryable=retryable,
        upstream_status=resp.status,
        retry_after=_retry_after(resp.headers),
        provider_message=provider_message,
    )


class OpenAICompatLLM:
    """One provider endpoint: base URL (up to, not including, /chat/completions) and key."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        sessions: SessionPool,
        *,
        first_token_timeout: float = 60.0,
        idle_timeout: float = 60.0,
        include_usage: bool = True,
        headers: dict[str, str] | None = None,
        path: str = "/chat/completions",
        complete_timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + path
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._sessions = sessions
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.include_usage = include_usage
        self.complete_timeout = complete_timeout

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"model": request.model, "messages": request.messages, "stream": True}
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.tools:
            body["tools"] = request.tools
            if request.tool_choice is not None:
                body["tool_choice"] = request.tool_choice
        body.update(request.extra)
        return body

    async def complete(self, request: ChatRequest) -> str:
        """One short non-streaming answer (chat titles), through the same pooled session.

        Raw JSON, like the streaming path: the openai SDK costs about 1.4 ms of CPU per
        call here against 0.2 ms (measured), and a title is asked for every new chat.
        One retry after a retryable failure, as the SDK would do.
        """
        try:
            return await self._complete_once(request)
        except UpstreamError as exc:
            if not exc.retryable:
                raise
            await asyncio.sleep(min(exc.retry_after or 0.5, 5.0))
            return await self._complete_once(request)

    async def _complete_once(self, request: ChatRequest) -> str:
        body = self._body(request)
        body["stream"] = False
        body.pop("stream_options", None)
        headers = {**self._headers, "Accept": "application/json"}
        session = self._sessions.get(self.base_url)
        timeout = aiohttp.ClientTimeout(
            total=self.complete_timeout, sock_connect=self._sessions.connect_timeout
        )
        try:
            async with session.post(self.url, json=body, headers=headers, timeout=timeout) as resp:
                if resp.status >= 300:
                    raise await status_error(resp)
                raw = await resp.content.read(MAX_COMPLETION_BYTES + 1)
        except aiohttp.ClientConnectorError as exc:
            log.warning("cannot connect to the model provider %s:%s: %s", exc.host, exc.port, exc)
            raise UpstreamError(
                "cannot connect to the model provider",
                code="upstream_unreachable",
                retryable=True,
            ) from None
        except TimeoutError:
            raise UpstreamError(
                "the model provider did not answer in time", code="upstream_timeout", retryable=True
            ) from None
        except aiohttp.ClientError:
            raise UpstreamError(
                "the model provider closed the connection", code="upstream_disconnected", retryable=True
            ) from None
        try:
            if len(raw) > MAX_COMPLETION_BYTES:
                raise ValueError("too large")
            content = json.loads(raw)["choices"][0]["message"].get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise UpstreamError(
                "the model provider sent an invalid answer", code="upstream_protocol"
            ) from None
        return content if isinstance(content, str) else ""

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        session = self._sessions.get(self.base_url)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._sessions.connect_timeout)
        watch = Deadlines(self.first_token_timeout, self.idle_timeout)
        finished = False  # the answer ended (finish_reason or [DONE]): keep the connection
        resp: aiohttp.ClientResponse | None = None
        try:
            try:
                resp = await session.post(
                    self.url, json=self._body(request), headers=self._headers, timeout=timeout
                )
            except aiohttp.ClientConnectorError as exc:
                log.warning("cannot connect to the model provider %s:%s: %s", exc.host, exc.port, exc)
                raise UpstreamError(
                    "cannot connect to the model provider",
                    code="upstream_unreachable",
                    retryable=True,
                ) from None
            if resp.status >= 300:
                raise await status_error(resp)
            waiting_first = True
            content = resp.content
            rest = b""
            done = False
            tools = _ToolState()
            while not done:
                # One await per network read (not one per line): split the lines ourselves.
                data = await content.readany()
                if not data:
                    break
                watch.touch()
                lines = (rest + data).split(b"\n") if rest else data.split(b"\n")
                rest = lines.pop()
                for raw in lines:
                    payload = _payload(raw)
                    if payload is None:
                        continue
                    if payload is _DONE:
                        finished = done = True
                        break
                    for chunk in _chunks(payload, tools):
                        if waiting_first and chunk.kind in ("delta", "reasoning"):
                            waiting_first = False
                            watch.first_token()
                        if chunk.kind == "finish":
                            finished = True
                        yield chunk
            if not finished and rest.strip():
                payload = _payload(rest)  # a last line without its newline
                finished = payload is _DONE
            if finished and tools.assembler:
                # [DONE] without a finish_reason: the calls are complete all the same.
                for call in tools.assembler.calls():
                    yield Chunk("tool_call", tool_call=call)
            if not finished:
                raise UpstreamError(
                    "the model provider closed the stream before the answer ended",
                    code="upstream_disconnected",
                    retryable=True,
                )
        except asyncio.CancelledError:
            expired = watch.expired()
            if expired is None:
                raise  # a stop, a shutdown or a client gone: not ours to turn into an error
            raise UpstreamError(
                "the model provider did not send a first token in time"
                if expired == "first_token"
                else "the model provider stopped sending tokens",
                code="upstream_timeout",
                retryable=True,
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            raise UpstreamError(
                "the model provider closed the connection mid-stream",
                code="upstream_disconnected",
                retryable=True,
            ) from None
        finally:
            watch.close()
            if resp is not None:
                if finished:
                    resp.release()
                else:
                    # Stopped, failed or abandoned: close the connection so the provider
                    # sees it and stops generating (no tokens paid for after a stop).
                    resp.close()


_DONE: dict[str, Any] = {}


def _payload(raw: bytes) -> dict[str, Any] | None:
    """The JSON object of one SSE line; None for lines that carry none; _DONE for [DONE]."""
    line = raw.strip()
    if not line.startswith(b"data:"):
        return None  # blank separators, comments (": keep-alive"), event: lines
    data = line[5:].strip()
    if data == b"[DONE]":
        return _DONE
    try:
        payload = json.loads(data)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        raise UpstreamError(
            "the model provider sent a malformed chunk", code="upstream_protocol", retryable=True
        )
    if "error" in payload and not payload.get("choices"):
        err = payload["error"]
        message = err.get("message") if isinstance(err, dict) else str(err)
        log.warning("model provider failed mid-stream: %s", str(message)[:1000])
        raise UpstreamError(
            "the model provider failed mid-answer",
            code="upstream_error",
            retryable=True,
            provider_message=str(message)[:1000],
        )
    return payload


class _ToolState:
    """Per stream: the assembler, created by the first chunk that carries tool calls."""

    __slots__ = ("assembler",)

    def __init__(self) -> None:
        self.assembler: ToolCallAssembler | None = None


def _chunks(payload: dict[str, Any], tools: _ToolState) -> list[Chunk]:
    out: list[Chunk] = []
    choices = payload.get("choices") or ()
    usage = payload.get("usage")
    for choice in choices:
        if choice.get("index", 0) != 0:
            continue  # n>1 is never requested; ignore stray extra choices
        delta = choice.get("delta") or {}
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            out.append(Chunk("reasoning", reasoning))
        content = delta.get("content")
        if content:
            out.append(Chunk("delta", content))
        # One dict lookup per chunk is all a text-only answer pays for tools.
        fragments = delta.get("tool_calls")
        if fragments:
            if tools.assembler is None:
                tools.assembler = ToolCallAssembler()
            tools.assembler.add(fragments)
            out.append(Chunk("tool_delta", tool_deltas=fragments))
        if choice.get("finish_reason"):
            if tools.assembler:
                out.extend(Chunk("tool_call", tool_call=call) for call in tools.assembler.calls())
            out.append(Chunk("finish", finish_reason=choice["finish_reason"]))
            usage = usage or choice.get("usage")  # Moonshot reports usage inside the last choice
    if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
        out.append(
            Chunk(
                "usage",
                usage={
                    "prompt_tokens": int(usage.get("prompt_tokens") or 0),
                    "completion_tokens": int(usage.get("completion_tokens") or 0),
                },
            )
        )
    return out
