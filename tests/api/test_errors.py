"""Bad input and failures: every API error is JSON {"error": {"code", "message", ...}}."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.support.app_server import RunningApp
from tests.support.client import Api, Response


def assert_error(resp: Response, status: int, code: str) -> dict[str, Any]:
    """The response is the JSON error envelope with this status and code; returns the error."""
    assert resp.status == status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    assert isinstance(resp.json, dict) and set(resp.json) == {"error"}, resp.text
    error: dict[str, Any] = resp.json["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    assert error["request_id"] == resp.headers["X-Request-ID"]
    return error


@pytest.fixture
async def ann(api: Api) -> Api:
    return await api.register_and_login("ann@example.com")


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"title": "unterminated', b"\xff\xfe\x00garbage", b'{"title": "a",}', b"nul\x00"],
)
async def test_malformed_json_is_400(ann: Api, raw: bytes) -> None:
    resp = await ann.request("POST", "/api/chats", data=raw, headers={"Content-Type": "application/json"})
    error = assert_error(resp, 400, "invalid_json")
    assert error["message"].startswith("request body is not valid JSON")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/chats", {"title": 5}, "title"),
        ("/api/chats", {"title": ["a"]}, "title"),
        ("/api/chats", {"title": "x", "colour": "red"}, "colour"),
        ("/api/chats", {"title": "x" * 201}, "title"),
        ("/api/auth/register", {"email": "a@example.com"}, "password"),
        ("/api/auth/register", {"password": "long enough 1"}, "email"),
        ("/api/auth/register", {"email": 7, "password": "long enough 1"}, "email"),
        ("/api/auth/login", {"email": "a@example.com", "password": None}, "password"),
    ],
)
async def test_wrong_types_and_missing_fields_are_422_naming_the_field(
    ann: Api, path: str, body: dict[str, Any], field: str
) -> None:
    resp = await ann.post(path, body)
    error = assert_error(resp, 422, "validation_error")
    assert error["field"] == field
    assert error["message"].startswith(f"{field}: ")


async def test_json_that_is_not_an_object_is_422(ann: Api) -> None:
    resp = await ann.post("/api/chats", [1, 2])
    error = assert_error(resp, 422, "validation_error")
    assert "dictionary" in error["message"] or "object" in error["message"]


async def test_body_over_the_limit_with_content_length_is_413(app: RunningApp, ann: Api) -> None:
    limit = app.settings.max_body_bytes
    body = json.dumps({"title": "x", "system_prompt": "y" * limit}).encode()
    assert len(body) > limit
    resp = await ann.request("POST", "/api/chats", data=body, headers={"Content-Type": "application/json"})
    error = assert_error(resp, 413, "payload_too_large")
    assert error["limit"] == limit
    assert str(limit) in error["message"]
    # The body was never read, so the server closes the connection and says so.
    assert resp.headers["Connection"] == "close"
    assert (await ann.get("/api/chats")).json["items"] == []


async def test_body_over_the_limit_is_refused_before_it_is_sent(app: RunningApp, ann: Api) -> None:
    """With Expect: 100-continue (curl's habit for large uploads) the body is never sent."""
    limit = app.settings.max_body_bytes
    reader, writer = await asyncio.open_connection("127.0.0.1", int(app.url.rsplit(":", 1)[1]))
    writer.write(
        f"POST /api/chats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ann.token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {limit + 1}\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 413 "), head
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    error = json.loads(await reader.readexactly(length))["error"]
    assert error["code"] == "payload_too_large"
    writer.close()


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    prefix = b'{"title": "big", "system_prompt": "'
    yield prefix
    sent = len(prefix)
    while sent < total:
        piece = b"y" * min(size, total - sent)
        sent += len(piece)
        yield piece
    yield b'"}'


async def test_chunked_body_over_the_limit_is_413(app: RunningApp, ann: Api,
                                                  http: aiohttp.ClientSession) -> None:
    limit = app.settings.max_body_bytes
    headers = {"Authorization": f"Bearer {ann.token}", "Content-Type": "application/json"}
    async with http.post(app.url + "/api/chats", data=_chunks(limit + 10), headers=headers) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in resp.request_info.headers
        status, body = resp.status, await resp.json()
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert body["error"]["request_id"]
    assert (await ann.get("/api/chats")).json["items"] == []


async def test_chunked_body_under_the_limit_is_accepted(app: RunningApp, ann: Api,
                                                        http: aiohttp.ClientSession) -> None:
    headers = {"Authorization": f"Bearer {ann.token}", "Content-Type": "application/json"}
    async with http.post(app.url + "/api/chats", data=_chunks(15_000), headers=headers) as resp:
        assert resp.request_info.headers.get("Transfer-Encoding") == "chunked"
        status, body = resp.status, await resp.json()
    assert status == 201, body
    assert body["title"] == "big"
    assert len(body["system_prompt"]) > 14_000


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/nope"), ("POST", "/api/chats/x/y/z"), ("DELETE", "/nope"), ("GET", "/api/chatsX")],
)
async def test_unknown_route_is_404_json(api: Api, method: str, path: str) -> None:
    resp = await api.request(method, path)
    error = assert_error(resp, 404, "not_found")
    assert error["message"] == f"no such route: {method} {path}"


async def test_unsupported_method_is_405_json(ann: Api) -> None:
    resp = await ann.request("PUT", "/api/chats", json_body={})
    assert_error(resp, 405, "method_not_allowed")


async def test_keep_alive_connection_survives_errors(app: RunningApp, ann: Api) -> None:
    """A client that reuses its connection after errors keeps working (one connection only)."""
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        client = Api(app.url, session, token=ann.token)
        for _ in range(3):
            assert (await client.get("/api/nope")).status == 404
            assert (await client.get("/api/chats", auth=False)).status == 401
            assert (await client.post("/api/chats", {"title": 1})).status == 422
            assert (await client.request("POST", "/api/chats", data=b"{")).status == 400
            assert (await client.post("/api/chats", {"title": "ok"})).status == 201


async def test_unexpected_exception_is_500_without_internals(
    app: RunningApp, ann: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A real failure of the real store: its table vanishes under the running app."""
    assert (await ann.post("/api/chats", {"title": "t"})).status == 201
    with sqlite3.connect(app.settings.sqlite_path) as conn:
        conn.execute("DROP TABLE chats")
    caplog.set_level(logging.INFO)
    resp = await ann.get("/api/chats", headers={"X-Request-ID": "trace-me-500"})
    error = assert_error(resp, 500, "internal_error")
    assert error == {
        "code": "internal_error",
        "message": "the server failed to handle this request; quote the request id when reporting it",
        "request_id": "trace-me-500",
    }
    for leak in ("chats", "sqlite", "OperationalError", "Traceback", "table"):
        assert leak not in resp.text
    # The operator sees the cause and the request id in the log.
    access = [r for r in caplog.records if r.name == "gust.access" and "trace-me-500" in r.getMessage()]
    assert access and access[0].levelno == logging.ERROR
    assert any(r.exc_info and "no such table" in str(r.exc_info[1]) for r in caplog.records)


async def test_closed_store_is_503_json(app: RunningApp, ann: Api) -> None:
    # What a shutdown does while requests are still open: the store is unavailable (503 +
    # Retry-After, issue 17), not an unexpected error, and its cause stays in the log.
    await app.services.store.close()
    resp = await ann.get("/api/chats")
    error = assert_error(resp, 503, "store_unavailable")
    assert int(resp.headers["Retry-After"]) >= 1
    assert "SQLiteStore" not in resp.text and "start()" not in resp.text and "closed" not in resp.text
    assert set(error) == {"code", "message", "request_id"}
