"""The topology suite's client side: streams run and recorded, checked against the store, counted.

A `Tally` gathers what a test saw (streams started, completed, interrupted, resumed, characters
lost, HTTP 500s...) and the problems found, prints one parsable line, then the test asserts
that no problem was found — so the counts are printed even when the test fails.
"""

from __future__ import annotations

import asyncio
import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.sse import SSEEvent, read_events
from tests.support.wait import until

REPORT: list[str] = []  # every TOPOLOGY line of the session, repeated in the terminal summary
PASSWORD = "correct horse battery 1"  # noqa: S105 - a test account


@dataclass
class Record:
    """One HTTP connection that streamed (or should have streamed) a generation's events."""

    label: str
    url: str
    status: int = 0  # HTTP status; 0 when no answer came (connection refused, reset, timeout)
    events: list[SSEEvent] = field(default_factory=list)
    error_body: Any = None
    retry_after: str | None = None
    failure: str | None = None  # the exception that ended the connection early, if any
    local_port: int | None = None  # the client side of the TCP connection (which worker has it)

    @property
    def start(self) -> SSEEvent | None:
        return next((e for e in self.events if e.event == "start"), None)

    @property
    def done(self) -> SSEEvent | None:
        return self.events[-1] if self.events and self.events[-1].event == "done" else None

    @property
    def final_status(self) -> str | None:
        return self.done.data["status"] if self.done else None

    @property
    def errors(self) -> list[dict[str, Any]]:
        return [e.data for e in self.events if e.event == "error"]

    @property
    def last_id(self) -> str | None:
        return next((e.id for e in reversed(self.events) if e.id), None)

    def text(self, before: str = "") -> str:
        """The answer text as this client shows it: `before` (from an earlier connection) + deltas.

        A `resync` event (events the client asked for are gone: a Redis restart took the log,
        a crashed owner) carries the stored text, which replaces what was shown before it.
        """
        text = before
        for event in self.events:
            if event.event == "delta":
                text += event.data["delta"]
            elif event.event == "resync":
                text = event.data["content"]
        return text

    @property
    def resyncs(self) -> int:
        return sum(1 for e in self.events if e.event == "resync")


async def read_stream(resp: aiohttp.ClientResponse, record: Record, timeout: float,
                      stop_after: int | None = None) -> None:
    """Read SSE events into `record` as they come, until `done` (or `stop_after` events); bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    count = 0
    try:
        while True:
            got = await asyncio.wait_for(read_events(resp, stop_after=1), max(0.01, deadline - loop.time()))
            if not got:
                record.failure = "the response ended without done"
                return
            record.events.extend(got)
            count += len(got)
            if got[-1].event == "done" or (stop_after is not None and count >= stop_after):
                return
    except TimeoutError:
        record.failure = f"no done within {timeout}s"
    except (aiohttp.ClientError, ConnectionError) as exc:
        record.failure = f"{type(exc).__name__}: {exc}"


class Client:
    """One signed-in user talking to any of the Gust processes (they share the signing key)."""

    def __init__(self, http: aiohttp.ClientSession, token: str) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {token}"}

    @classmethod
    async def sign_up(cls, http: aiohttp.ClientSession, url: str, email: str) -> Client:
        body = {"email": email, "password": PASSWORD}
        async with http.post(url + "/api/auth/register", json=body) as resp:
            assert resp.status == 201, await resp.text()
        async with http.post(url + "/api/auth/login", json=body) as resp:
            assert resp.status == 200, await resp.text()
            return cls(http, (await resp.json())["access_token"])

    async def call(self, method: str, url: str, body: Any = None,
                   timeout: float = 30) -> tuple[int, Any, Mapping[str, str]]:
        """(status, JSON or text, headers); status 0 when no answer came within `timeout`."""
        try:
            async with self.http.request(method, url, json=body, headers=self.headers,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
                text = await resp.text()
                parsed = json.loads(text) if "json" in resp.headers.get("Content-Type", "") else text
                return resp.status, parsed, resp.headers
        except (TimeoutError, aiohttp.ClientError) as exc:
            return 0, f"{type(exc).__name__}: {exc}", {}

    async def new_chat(self, url: str) -> str:
        status, body, _ = await self.call("POST", url + "/api/chats", {})
        assert status == 201, body
        chat_id: str = body["id"]
        return chat_id

    async def stream(self, record: Record, body: dict[str, Any], timeout: float,
                     stop_after: int | None = None) -> Record:
        """POST /chat/stream on `record.url` and read until `done`."""
        return await self._sse("POST", record.url + "/chat/stream", record, timeout, body=body,
                               stop_after=stop_after)

    async def follow(self, record: Record, chat_id: str, timeout: float, last_event_id: str | None = None,
                     stop_after: int | None = None) -> Record:
        """GET /api/chats/{id}/events (a resume when `last_event_id` is given)."""
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        return await self._sse("GET", record.url + f"/api/chats/{chat_id}/events", record, timeout,
                               headers=headers, stop_after=stop_after)

    async def _sse(self, method: str, url: str, record: Record, timeout: float, *,
                   body: Any = None, headers: dict[str, str] | None = None,
                   stop_after: int | None = None) -> Record:
        try:
            async with self.http.request(method, url, json=body, headers={**self.headers, **(headers or {})},
                                         timeout=aiohttp.ClientTimeout(total=None, connect=10)) as resp:
                record.status = resp.status
                transport = resp.connection.transport if resp.connection is not None else None
                if transport is not None:
                    record.local_port = transport.get_extra_info("sockname")[1]
                if resp.status != 200:
                    text = await resp.text()
                    record.retry_after = resp.headers.get("Retry-After")
                    try:
                        record.error_body = json.loads(text)
                    except ValueError:
                        record.error_body = text
                    return record
                await read_stream(resp, record, timeout, stop_after)
        except (aiohttp.ClientError, ConnectionError) as exc:
            record.failure = f"{type(exc).__name__}: {exc}"
        return record

    async def messages(self, url: str, chat_id: str) -> list[dict[str, Any]] | None:
        status, body, _ = await self.call("GET", url + f"/api/chats/{chat_id}")
        return list(body["messages"]) if status == 200 else None

    async def settled(self, url: str, chat_id: str, message_id: str,
                      timeout: float = 60) -> dict[str, Any] | None:
        """The stored message once it left `streaming` (None if it never did within `timeout`)."""
        found: dict[str, Any] = {}

        async def left_streaming() -> bool:
            messages = await self.messages(url, chat_id)
            message = next((m for m in messages or [] if m["id"] == message_id), None)
            if message is not None:
                found.update(message)
            return message is not None and message["status"] != "streaming"

        if await until(left_streaming, timeout=timeout, interval=0.2):
            return found
        return None


def matched(reference: str, text: str) -> int:
    """How many characters of `reference` appear, in order, in `text` (gaps and repeats excluded)."""
    if reference == text:
        return len(reference)
    blocks = difflib.SequenceMatcher(None, reference, text, autojunk=False).get_matching_blocks()
    return sum(block.size for block in blocks)


@dataclass
class Tally:
    """What one test saw, printed as `TOPOLOGY <test>: key=value ...`."""

    test: str
    started: int = 0
    completed: int = 0
    interrupted: int = 0
    stopped: int = 0
    resumed: int = 0
    chars_lost: int = 0
    http_500: int = 0
    no_done: int = 0
    extra: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, name: str, n: int = 1) -> None:
        self.extra[name] = self.extra.get(name, 0) + n

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def connection(self, record: Record, *, must_end: bool = True) -> None:
        """Count one streaming connection: a 500 or a stream without `done` is a problem."""
        if record.status >= 500 and record.status != 503:
            self.http_500 += 1
            self.problem(f"{record.label}: HTTP {record.status} {record.error_body}")
        if record.status == 200 and must_end and record.done is None:
            self.no_done += 1
            self.problem(f"{record.label}: no done ({record.failure}); last events "
                         f"{[e.event for e in record.events[-3:]]}")

    def response(self, label: str, status: int, body: Any, headers: Mapping[str, str | None], *,
                 retry_after: bool = True) -> None:
        """Count one plain response: 500s are problems; a 503 must carry JSON (and Retry-After)."""
        if status >= 500 and status != 503:
            self.http_500 += 1
            self.problem(f"{label}: HTTP {status} {body}")
        if status == 503:
            self.add("http_503")
            if retry_after and not headers.get("Retry-After"):
                self.problem(f"{label}: 503 without Retry-After")
            if not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
                self.problem(f"{label}: 503 without a JSON error: {body!r}")
        if status == 0:
            self.add("no_answer")
            self.problem(f"{label}: no answer ({body})")

    def compare(self, label: str, client_text: str, final_status: str | None, stored: dict[str, Any] | None,
                expected: str, *, survived: bool) -> None:
        """Check one client's view of a generation against the store and the upstream's text."""
        if stored is None:
            self.problem(f"{label}: the stored answer never left `streaming`")
            return
        content: str = stored["content"]
        lost = len(client_text) - matched(client_text, content)  # seen, but not stored
        if final_status == "complete":
            lost += len(expected) - matched(expected, client_text)  # gaps in a "complete" text
            if client_text != content:
                self.problem(f"{label}: complete, but the client's text ({len(client_text)} chars) "
                             f"differs from the stored text ({len(content)} chars, {stored['status']})")
            if stored["status"] != "complete":
                self.problem(f"{label}: the client was told complete, the store says {stored['status']}")
        if not expected.startswith(content):
            self.problem(f"{label}: the stored text is not a prefix of the upstream's answer")
        self.chars_lost += lost
        if survived and lost:
            self.problem(f"{label}: {lost} characters lost although its process survived")

    def count_final(self, status: str | None) -> None:
        if status == "complete":
            self.completed += 1
        elif status == "interrupted":
            self.interrupted += 1
        elif status == "stopped":
            self.stopped += 1

    def line(self) -> str:
        fields = {"started": self.started, "completed": self.completed, "interrupted": self.interrupted,
                  "stopped": self.stopped, "resumed": self.resumed, "chars_lost": self.chars_lost,
                  "http_500": self.http_500, "no_done": self.no_done, **self.extra,
                  "problems": len(self.problems)}
        return f"TOPOLOGY {self.test}: " + " ".join(f"{k}={v}" for k, v in fields.items())

    def report(self) -> None:
        """Print the counts, then fail with every problem found."""
        line = self.line()
        print(line)
        REPORT.append(line)
        assert not self.problems, line + "\n" + "\n".join(self.problems)
