"""Hostile bodies: JSON too deep, non-standard JSON and oversized bodies, over every route.

`[` x 2000 was a 500 on every JSON route (RecursionError), anonymous login included, before
the login rate limit counted anything. Every route that takes a JSON body (from the OpenAPI
document, plus the raw-JSON import) must refuse such bodies with a 400 JSON error, and every
route of the document must refuse a body over its limit from the headers alone (413).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gust.domain.json_input import MAX_JSON_DEPTH
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api

MAX_BODY = 8192


@pytest.fixture
async def small_app(data_dir: Path) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(data_dir, max_body_bytes=MAX_BODY, import_max_bytes=MAX_BODY * 2))
    yield running
    await running.stop()


@pytest.fixture
async def member(small_app: RunningApp, http: aiohttp.ClientSession) -> Api:
    return await small_app.sign_up(http, "hostile@example.com")


def _path(template: str) -> str:
    return template.replace("{", "x").replace("}", "")


def json_routes(document: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(METHOD, path, public) of every operation whose body is JSON, and the raw-JSON import."""
    found = [
        (method.upper(), _path(template), op.get("security") == [])
        for template, item in document["paths"].items()
        for method, op in item.items()
        if "application/json" in op.get("requestBody", {}).get("content", {})
    ]
    return [*found, ("POST", "/api/import", False)]


def all_routes(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method.upper(), _path(t)) for t, item in document["paths"].items() for method in item]


NESTED_OPEN = b"[" * 2000  # never closed: the parser recursed until RecursionError
NESTED_CLOSED = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)  # valid JSON, too deep
OBJECTS_DEEP = b'{"a":' * 500 + b"1" + b"}" * 500


@pytest.mark.parametrize("body", [NESTED_OPEN, NESTED_CLOSED, OBJECTS_DEEP],
                         ids=["open-brackets", "closed-brackets", "objects"])
async def test_too_deep_json_is_400_on_every_json_route(
    small_app: RunningApp, member: Api, body: bytes
) -> None:
    routes = json_routes(small_app.app.openapi)
    assert len(routes) >= 15, routes
    assert any(public for _, _, public in routes)  # register and login are anonymous
    seen = []
    for method, path, public in routes:
        for who in (member, member.as_user(None)) if public else (member,):
            resp = await who.request(method, path, data=body, headers={"Content-Type": "application/json"})
            seen.append((method, path, resp.status, resp.error_code))
    wrong = [s for s in seen if (s[2], s[3]) != (400, "json_too_deep")]
    assert not wrong, wrong


@pytest.mark.parametrize("body", [b'{"title": NaN}', b'{"title": Infinity}', b'{"n": -Infinity}',
                                  b'{"n": ' + b"9" * 5000 + b"}"],
                         ids=["nan", "infinity", "minus-infinity", "5000-digit-integer"])
async def test_json_that_python_accepts_but_json_does_not_is_400(
    small_app: RunningApp, member: Api, body: bytes
) -> None:
    seen = []
    for method, path, _ in json_routes(small_app.app.openapi):
        resp = await member.request(method, path, data=body, headers={"Content-Type": "application/json"})
        seen.append((method, path, resp.status, resp.error_code))
    wrong = [s for s in seen if (s[2], s[3]) not in {(400, "invalid_json"), (400, "invalid_import_file")}]
    assert not wrong, wrong


async def _raw_request(url: str, head: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    """Send exactly these bytes; read one response (the server must not wait for a body)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode() + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        headers: dict[str, str] = {}
        while (line := await asyncio.wait_for(reader.readline(), 10)) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        payload = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
        return int(status_line.split()[1]), headers, payload
    finally:
        writer.close()


async def test_every_route_refuses_an_oversized_body_before_reading_it(
    small_app: RunningApp, member: Api
) -> None:
    """Content-Length over the limit: 413 JSON at once, though not one byte of body was sent."""
    assert member.token
    seen = []
    for method, path in all_routes(small_app.app.openapi):
        for auth in (f"Authorization: Bearer {member.token}\r\n", ""):
            head = (f"{method} {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\n"
                    f"Content-Length: {10**9}\r\n\r\n")
            status, headers, payload = await _raw_request(small_app.url, head)
            code = json.loads(payload)["error"]["code"] if "json" in headers.get("content-type", "") else None
            seen.append((method, path, bool(auth), status, code))
    wrong = [s for s in seen if s[3] != 413 or s[4] not in {"payload_too_large", "request_too_large"}]
    assert not wrong, wrong


async def test_a_chunked_body_over_the_limit_is_413(small_app: RunningApp, member: Api) -> None:
    """Without Content-Length the body is counted as it arrives, and never kept past the limit."""
    assert member.token
    chunk = b"[" + b" " * 1000 + b"]"
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    body = framed * (MAX_BODY * 3 // len(chunk)) + b"0\r\n\r\n"
    seen = []
    for method, path, _ in json_routes(small_app.app.openapi):
        head = (f"{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {member.token}\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        status, _, payload = await _raw_request(small_app.url, head, body)
        seen.append((method, path, status, json.loads(payload)["error"]["code"] if payload else None))
    # /v1 answers in OpenAI's error format (its own code for the same refusal).
    wrong = [s for s in seen if s[2] != 413 or s[3] not in {"payload_too_large", "request_too_large"}]
    assert not wrong, wrong
