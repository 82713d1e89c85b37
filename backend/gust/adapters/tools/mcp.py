"""One MCP server's tools over streamable HTTP, with the official `mcp` SDK.

Lifecycle: the session opens on first use (listing or calling), is reused by every call,
and is reopened when it has died (the server restarted, the network failed). The SDK's
session lives in anyio task groups that must be entered and left by one task, so a
background task owns each session; callers only send requests over it. A call waits for
the first of: its answer, its time limit, or the session's end, so a server that is down,
hangs (accepts connections but never answers) or dies mid-call fails that call with a
clear error result, never a hung answer. A call that provably never reached the server
(the connection was refused, or the server forgot the session after a restart) is sent
again once on a fresh session, within the same time limit.

Tools are named `mcp:<server name>/<tool name>`. The URL passes the SSRF guard when the
session opens, and every connection the SDK makes goes through guarded_http.GuardedTransport,
which checks each resolved address and connects only to addresses that passed (with
SSRF_ALLOWED_HOSTS as the allow-list for private hosts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx2
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, TextContent

from gust.adapters.tools.guarded_http import GuardedTransport, exception_tree, guard_refusal
from gust.adapters.web.connect import OutboundGuard
from gust.adapters.web.guard import AddressPolicy, AddressResolver
from gust.ports.tools import Approval, ToolResult, ToolSpec
from gust.ports.web import FetchError

log = logging.getLogger(__name__)

PREFIX = "mcp:"
MAX_ERROR_CHARS = 500
# A session's SSE streams may stay open and silent for long; calls carry their own limits.
SESSION_READ_TIMEOUT = 300.0
CLOSE_TIMEOUT = 5.0
MAX_PAGES = 20  # of a tool listing
# After a failed listing, answers list no tools from this server for a while (doubling up to
# the maximum) instead of each trying to connect: a server that hangs would slow every one.
LIST_BACKOFF_MAX = 60.0

Status = Literal["idle", "connected", "unreachable", "blocked"]


@dataclass(frozen=True, slots=True)
class McpServerConfig:
    """An MCP server as an admin configured it. `headers` are secrets (sent, never shown)."""

    name: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    approval: Approval = "auto"
    enabled_tools: frozenset[str] | None = None  # None: every tool the server lists


class _Unavailable(Exception):
    """The session could not be opened or died; `message` is for the model and the user."""

    def __init__(self, message: str, *, never_reached: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.never_reached = never_reached


class _Session:
    """One open MCP session, owned by its task (see the module docstring)."""

    def __init__(self, task: asyncio.Task[None], client: Client) -> None:
        self.task = task
        self.client = client
        self.closing = asyncio.Event()

    @property
    def alive(self) -> bool:
        return not self.task.done()


class McpToolProvider:
    """ports.tools.ToolProvider for one MCP server."""

    def __init__(
        self,
        config: McpServerConfig,
        *,
        policy: AddressPolicy,
        resolver: AddressResolver | None = None,
        connect_timeout: float = 10.0,
        mode: str = "auto",
    ) -> None:
        self.config = config
        self.policy = policy
        self.resolver = resolver
        self.connect_timeout = connect_timeout
        self.mode = mode  # the SDK's protocol negotiation ("auto", "legacy" or a version)
        self.status: Status = "idle"
        self.status_detail = ""
        self.sessions_opened = 0  # for the admin's status and for tests of session reuse
        self.connect_attempts = 0
        self._list_backoff = 0.0
        self._list_retry_at = 0.0
        self._guard = OutboundGuard(policy, resolver, resolve_timeout=connect_timeout)
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self._tools: list[ToolSpec] | None = None

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.config.name}/"

    # -- ToolProvider ---------------------------------------------------------------------
    async def list_tools(self) -> list[ToolSpec]:
        """The server's (enabled) tools, listed once per session; none while it is unreachable."""
        if self._tools is not None and self._session is not None and self._session.alive:
            return self._tools
        if time.monotonic() < self._list_retry_at:
            return []  # failed recently: see LIST_BACKOFF_MAX (a call still tries at once)
        return await self.refresh()

    async def refresh(self) -> list[ToolSpec]:
        """List the server's tools again (the admin's refresh); never raises."""
        try:
            async with asyncio.timeout(self.connect_timeout * 2):
                session = await self._open()
                listed = await self._send(session, session.client.list_tools(cache_mode="bypass"))
                tools = list(listed.tools)
                for _ in range(MAX_PAGES):
                    if not listed.next_cursor:
                        break
                    page = session.client.list_tools(cursor=listed.next_cursor, cache_mode="bypass")
                    listed = await self._send(session, page)
                    tools += listed.tools
        except (_Unavailable, TimeoutError, MCPError) as exc:
            self._tools = None
            self._list_backoff = min(LIST_BACKOFF_MAX, max(1.0, self._list_backoff * 2))
            self._list_retry_at = time.monotonic() + self._list_backoff
            message = self._failure_message(exc)
            log.warning(
                "MCP server %s: listing tools failed (next try in %.0f s): %s",
                self.config.name,
                self._list_backoff,
                message,
            )
            return []
        self._list_backoff = self._list_retry_at = 0.0
        enabled = self.config.enabled_tools
        self._tools = [
            ToolSpec(
                name=self.prefix + tool.name,
                description=(tool.description or tool.title or tool.name)[:4000],
                parameters=tool.input_schema or {"type": "object", "properties": {}},
                approval=self.config.approval,
            )
            for tool in tools
            if enabled is None or tool.name in enabled
        ]
        return self._tools

    def owns(self, name: str) -> bool:
        return name.startswith(self.prefix)

    async def call(self, name: str, arguments: dict[str, Any], time_limit: float) -> ToolResult:
        if not name.startswith(self.prefix):
            return ToolResult(False, f"unknown tool '{name[:100]}'")
        tool = name[len(self.prefix) :]
        if self.config.enabled_tools is not None and tool not in self.config.enabled_tools:
            return ToolResult(False, f"the tool '{name[:100]}' is not enabled")
        try:
            async with asyncio.timeout(time_limit):
                return await self._call(tool, arguments, time_limit)
        except TimeoutError:
            name = self.config.name
            return ToolResult(False, f"MCP server '{name}' did not answer within {time_limit:g} s")

    async def close(self) -> None:
        async with self._lock:
            session, self._session = self._session, None
        if session is not None:
            await _stop(session)
        self.status = "idle"

    # -- sessions ---------------------------------------------------------------------------
    async def _call(self, tool: str, arguments: dict[str, Any], time_limit: float) -> ToolResult:
        for attempt in (1, 2):
            try:
                session = await self._open()
                result = await self._send(
                    session, session.client.call_tool(tool, arguments, read_timeout_seconds=time_limit)
                )
            except _Unavailable as exc:
                if attempt == 1 and exc.never_reached:
                    continue  # the server restarted or was briefly away: once more, freshly
                return ToolResult(False, exc.message)
            except MCPError as exc:
                if attempt == 1 and _session_lost(exc):
                    await self._drop(session)
                    continue
                why = _short(exc.message)
                return ToolResult(False, f"MCP server '{self.config.name}' refused the call: {why}")
            return _tool_result(result)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _open(self) -> _Session:
        """The live session, opened now if there is none."""
        async with self._lock:
            session = self._session
            if session is not None and session.alive:
                return session
            if session is not None:
                self._session = None
                await _stop(session)
            try:
                await self._guard.check_target(self.config.url)
            except FetchError as exc:
                self.status, self.status_detail = "blocked", exc.reason
                raise _Unavailable(self._blocked_message(exc)) from None
            self.connect_attempts += 1
            try:
                session = await self._start_session()
            except _Unavailable as exc:
                self.status, self.status_detail = "unreachable", exc.message
                raise
            self._session = session
            self.sessions_opened += 1
            self.status, self.status_detail = "connected", ""
            return session

    async def _start_session(self) -> _Session:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[_Session] = loop.create_future()
        task = asyncio.create_task(self._own_session(ready), name=f"mcp session {self.config.name}")
        task.add_done_callback(_retrieve)
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await asyncio.shield(ready)
        except TimeoutError:
            # No retry after this one: a server that hangs would only hang again.
            failure: BaseException | None = None
            message = f"MCP server '{self.config.name}' did not answer within {self.connect_timeout:g} s"
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception as exc:
            failure, message = exc, ""
        task.cancel()
        await asyncio.wait({task}, timeout=CLOSE_TIMEOUT)
        if failure is not None:
            raise self._unavailable(failure) from None
        raise _Unavailable(message)

    async def _own_session(self, ready: asyncio.Future[_Session]) -> None:
        """The session's owner: opens it, keeps it until asked to close or until it fails."""
        http = httpx2.AsyncClient(
            transport=GuardedTransport(self.policy, self.resolver),
            headers=self.config.headers,
            timeout=httpx2.Timeout(self.connect_timeout, read=SESSION_READ_TIMEOUT),
            follow_redirects=False,
            trust_env=False,
        )
        transport = streamable_http_client(self.config.url, http_client=http)
        try:
            async with http, Client(transport, mode=self.mode, cache=None) as client:
                session = _Session(asyncio.current_task(), client)  # type: ignore[arg-type]
                ready.set_result(session)
                await session.closing.wait()
        except Exception as exc:
            if not ready.done():
                ready.set_exception(exc)
                return  # the opener reports it
            log.info("MCP server %s: session ended: %r", self.config.name, exc)
            raise
        finally:
            if not ready.done():  # cancelled while opening: the opener has given up already
                ready.set_exception(ConnectionError("the session ended before it opened"))

    async def _send(self, session: _Session, request: Any) -> Any:
        """Await one request unless the session ends first."""
        call = asyncio.ensure_future(request)
        try:
            done, _ = await asyncio.wait({call, session.task}, return_when="FIRST_COMPLETED")
        except asyncio.CancelledError:
            call.cancel()
            raise
        failure: Exception | None = None
        if call in done:
            try:
                return call.result()
            except MCPError as exc:
                if exc.message != "Connection closed":
                    raise  # the server's own refusal: the session is fine
            except Exception as exc:
                failure = exc  # the transport failed under this request
            # The session fell apart under this request: why decides the retry.
            await asyncio.wait({session.task}, timeout=1.0)  # never raises the task's error
            raise self._session_failure(session, failure) from None
        call.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await call
        raise self._session_failure(session)

    def _session_failure(self, session: _Session, failure: BaseException | None = None) -> _Unavailable:
        if session.task.done() and not session.task.cancelled():
            failure = session.task.exception() or failure
        elif not session.task.done():
            session.task.cancel()  # a session that failed a request is not reused; nor left running
        self._session = None if self._session is session else self._session
        self.status = "unreachable"
        if failure is None:
            return _Unavailable(f"the connection to MCP server '{self.config.name}' was lost")
        return self._unavailable(failure)

    def _unavailable(self, failure: BaseException) -> _Unavailable:
        refused = guard_refusal(failure)
        if refused is not None:
            self.status, self.status_detail = "blocked", refused.reason
            return _Unavailable(self._blocked_message(refused))
        never_reached = any(isinstance(e, httpx2.ConnectError) for e in exception_tree(failure))
        if never_reached:
            message = f"MCP server '{self.config.name}' is unreachable (connection refused)"
        elif any(isinstance(e, httpx2.TimeoutException) for e in exception_tree(failure)):
            message = f"MCP server '{self.config.name}' did not answer in time"
        else:
            message = f"the connection to MCP server '{self.config.name}' failed"
            leaves = [e for e in exception_tree(failure) if not isinstance(e, BaseExceptionGroup)]
            cause = leaves[0] if leaves else failure
            log.warning("MCP server %s: session failed: %r", self.config.name, cause)
        self.status_detail = message
        return _Unavailable(message, never_reached=never_reached)

    def _blocked_message(self, exc: FetchError) -> str:
        return f"MCP server '{self.config.name}' refused by the SSRF guard: {exc.reason}"

    def _failure_message(self, exc: BaseException) -> str:
        if isinstance(exc, _Unavailable):
            return exc.message
        if isinstance(exc, MCPError):
            return _short(exc.message)
        return f"MCP server '{self.config.name}' did not answer in time"

    async def _drop(self, session: _Session) -> None:
        async with self._lock:
            if self._session is session:
                self._session = None
        await _stop(session)


async def _stop(session: _Session) -> None:
    session.closing.set()
    await asyncio.wait({session.task}, timeout=CLOSE_TIMEOUT)  # never raises the task's error
    if not session.task.done():
        session.task.cancel()
        await asyncio.wait({session.task}, timeout=CLOSE_TIMEOUT)


def _retrieve(task: asyncio.Task[None]) -> None:
    """Mark a session task's failure as seen (it is logged and reported where it matters)."""
    if not task.cancelled():
        task.exception()


def _session_lost(exc: MCPError) -> bool:
    """The server no longer knows the session (it restarted): the request never ran."""
    # The SDK's words for a 404 on a known session, and the SDK server's own answer.
    message = exc.message.lower()
    return "session" in message and ("terminated" in message or "not found" in message)


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _tool_result(result: CallToolResult) -> ToolResult:
    """The call's content as text for the model: text blocks as they are, other blocks named."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        else:
            mime = getattr(block, "mime_type", None) or getattr(block, "mimeType", None)
            parts.append(f"[{block.type}{': ' + mime if mime else ''}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return ToolResult(not result.is_error, "\n".join(parts))
