"""n8n-style webhook agents: POST the conversation, read an SSE or a plain JSON answer.

Request: `{messages, system_prompt, config: {model}}` with `Authorization: Bearer <token>`.
Answer: SSE lines `data: {"content": "..."}` ending with `data: [DONE]`, or one JSON
object `{"content": "..."}`. While the agent works, `status` chunks report the wait.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from yarl import URL

from gust.adapters.llm.openai_compat import status_error
from gust.adapters.llm.sessions import SessionPool
from gust.adapters.web.connect import refusal
from gust.adapters.web.guard import parse_ip_host
from gust.domain.errors import UpstreamError
from gust.ports.llm import ChatRequest, Chunk
from gust.ports.web import FetchError

log = logging.getLogger(__name__)

STATUS_EVERY = 2.0


def _content(payload: Any) -> str:
    if isinstance(payload, dict):
        for key in ("content", "output", "text", "answer"):
            value = payload.get(key)
            if isinstance(value, str):
                return value
    if isinstance(payload, list) and payload:
        return _content(payload[0])  # n8n answers a list of items
    raise UpstreamError("the agent answered without a content field", code="upstream_protocol")


class WebhookLLM:
    def __init__(
        self,
        url: str,
        token: str | None,
        sessions: SessionPool,
        *,
        model: str,
        first_token_timeout: float = 120.0,
        idle_timeout: float = 60.0,
        status_every: float = STATUS_EVERY,
        guarded: bool = True,
    ) -> None:
        self.url = url
        # A user-configured URL (an agent's) goes through the SSRF guard at connect time.
        self.guarded = guarded
        self.status_every = status_every
        self.token = token
        self.model = model
        self._sessions = sessions
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        body = {
            "messages": [m for m in request.messages if m["role"] != "system"],
            "system_prompt": system or None,
            "config": {"model": request.model or self.model},
        }
        headers = {"Accept": "text/event-stream, application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        target: str | URL = self._checked_target() if self.guarded else self.url
        session = self._sessions.get(self.url, guarded=self.guarded)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._sessions.connect_timeout, sock_read=None
        )
        # No redirects: the token is for this URL only, and a webhook has no reason to move.
        pending = asyncio.ensure_future(
            session.post(target, json=body, headers=headers, timeout=timeout, allow_redirects=False)
        )
        resp: aiohttp.ClientResponse | None = None
        try:
            waited = 0.0
            while True:
                done, _ = await asyncio.wait({pending}, timeout=self.status_every)
                if done:
                    break
                waited += self.status_every
                if waited >= self.first_token_timeout:
                    raise UpstreamError(
                        "the agent did not answer in time", code="upstream_timeout", retryable=True
                    )
                yield Chunk("status", f"waiting for the agent ({waited:.0f} s)")
            try:
                resp = pending.result()
            except (aiohttp.ClientConnectorError, aiohttp.InvalidURL, OSError) as exc:
                refused = refusal(exc)
                if refused is not None and refused.kind == "blocked":
                    log.warning("agent webhook refused by the SSRF guard: %s", refused.reason)
                    raise UpstreamError(
                        f"the agent's webhook address is not allowed ({refused.reason})",
                        code="upstream_blocked",
                    ) from None
                if not isinstance(exc, aiohttp.ClientConnectorError):
                    raise
                raise UpstreamError(
                    "cannot connect to the agent's webhook", code="upstream_unreachable", retryable=True
                ) from None
            if resp.status in (401, 403):
                raise UpstreamError(
                    "the agent's webhook refused the token", code="upstream_auth", upstream_status=resp.status
                )
            if resp.status >= 300:
                raise await status_error(resp, "the agent's webhook")
            if "text/event-stream" in resp.headers.get("Content-Type", ""):
                async for chunk in self._sse(resp):
                    yield chunk
            else:
                raw = await asyncio.wait_for(resp.read(), self.idle_timeout)
                try:
                    text = _content(json.loads(raw))
                except ValueError:
                    raise UpstreamError("the agent sent invalid JSON", code="upstream_protocol") from None
                if text:
                    yield Chunk("delta", text)
                yield Chunk("finish", finish_reason="stop")
        except TimeoutError:
            raise UpstreamError(
                "the agent stopped answering", code="upstream_timeout", retryable=True
            ) from None
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
            raise UpstreamError(
                "the agent closed the connection mid-answer", code="upstream_disconnected", retryable=True
            ) from None
        finally:
            if not pending.done():
                pending.cancel()
            if resp is not None:
                resp.close()

    def _checked_target(self) -> URL:
        """The guard's URL rules before any connection (literal and localhost hosts in every
        spelling); the session's connector checks each resolved address when it connects.
        A legacy numeric host (2130706433) is sent as the address it denotes."""
        try:
            url = URL(self.url)
            host, _port = self._sessions.guard.policy.check_url(url)
            literal = parse_ip_host(host)
            return url.with_host(str(literal)) if literal is not None and host != str(literal) else url
        except (ValueError, TypeError):
            raise UpstreamError("the agent's webhook URL is invalid", code="upstream_blocked") from None
        except FetchError as exc:
            log.warning("agent webhook refused by the SSRF guard: %s", exc.reason)
            raise UpstreamError(
                f"the agent's webhook address is not allowed ({exc.reason})", code="upstream_blocked"
            ) from None

    async def _sse(self, resp: aiohttp.ClientResponse) -> AsyncIterator[Chunk]:
        finished = False
        while True:
            raw = await asyncio.wait_for(resp.content.readline(), self.idle_timeout)
            if not raw:
                break
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                finished = True
                break
            try:
                text = _content(json.loads(data))
            except ValueError:
                raise UpstreamError("the agent sent a malformed event", code="upstream_protocol") from None
            if text:
                yield Chunk("delta", text)
        if not finished:
            raise UpstreamError(
                "the agent's stream ended without [DONE]", code="upstream_disconnected", retryable=True
            )
        yield Chunk("finish", finish_reason="stop")
