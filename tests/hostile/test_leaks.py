"""What must not leak: share-link secrets and query tokens in logs, /metrics to the world, the
server's version, and a model provider's own error text to users."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.data_share.test_share_links import chat_with_messages
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.openapi_check import OpenAPIChecker
from tests.support.sse import read_events

PROVIDER_TEXT = "quota of org-7731 exceeded at http://10.2.3.4:8000 key sk-live-4b1d"


# -- logs ---------------------------------------------------------------------------------------
async def test_share_secrets_and_query_tokens_never_reach_the_logs(
    app: RunningApp, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    owner = await api.register_and_login("owner@example.com")
    chat_id, _ = await chat_with_messages(app, owner)
    secret = (await owner.post(f"/api/chats/{chat_id}/share")).json["id"]
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as http:
        for path in (f"/s/{secret}", f"/api/shares/{secret}", f"/s/{secret}/extra", f"/api/shares/{secret}x",
                     f"/api/chats/{chat_id}/messages?token={secret}", f"/?invite={secret}",
                     f"/api/auth/oauth/nobody/callback?code={secret}&state={secret}"):
            async with http.get(app.url + path) as resp:
                await resp.read()
    text = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    assert "[redacted]" in caplog.text
    assert secret not in text and secret[:16] not in text
    assert f"/api/chats/{chat_id}/messages" in caplog.text  # ids stay readable


# -- /metrics -----------------------------------------------------------------------------------
async def test_metrics_without_a_token_serve_local_scrapers_only(api: Api) -> None:
    assert (await api.get("/metrics")).status == 200  # this host, directly
    relayed = await api.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert (relayed.status, relayed.error_code) == (403, "metrics_forbidden")
    assert "gust_http_requests" not in relayed.text


async def test_metrics_token(data_dir: Path, http: aiohttp.ClientSession) -> None:
    app = await start_app(make_settings(data_dir, metrics_token="scrape-me-0123456789"))
    try:
        api = Api(app.url, http, OpenAPIChecker(app.app.openapi))
        wrong: tuple[dict[str, str], ...] = (
            {}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic scrape-me-0123456789"}
        )
        for headers in wrong:
            resp = await api.get("/metrics", headers=headers)
            assert (resp.status, resp.error_code) == (403, "metrics_forbidden"), headers
        ok = await api.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789",
                                                "X-Forwarded-For": "203.0.113.9"})
        assert ok.status == 200 and "gust_http_requests" in ok.text
    finally:
        await app.stop()


# -- Server header ------------------------------------------------------------------------------
async def test_no_answer_names_the_server_software(app: RunningApp, http: aiohttp.ClientSession) -> None:
    paths = ["/health", "/api/openapi.json", "/", "/api/docs", "/api/docs/assets/swagger-ui.css",
             "/assets/nothing.js", "/api/nothing", "/api/chats", "/metrics"]
    for path in paths:
        async with http.get(app.url + path) as resp:
            assert "Server" not in resp.headers, (path, resp.headers.get("Server"))
    async with http.request("BREW", app.url + "/health") as resp:  # Tornado's own 405
        assert "Server" not in resp.headers


# -- provider error text ------------------------------------------------------------------------
@pytest.fixture
async def model_app(data_dir: Path, tmp_path: Path, upstream: FakeUpstream) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(data_dir, models_file=upstream.models_file(tmp_path),
                                            upstream_first_token_timeout=5.0, upstream_idle_timeout=5.0))
    yield running
    await running.stop()


SCRIPTS = {
    "HTTP 429": Script(status=429, error_message=PROVIDER_TEXT),
    "HTTP 400": Script(status=400, error_message=PROVIDER_TEXT),
    "HTTP 500": Script(status=500, error_message=PROVIDER_TEXT),
    "mid-stream": Script(tokens=["a", "b", "c"], error_after=1, error_message=PROVIDER_TEXT),
}


@pytest.mark.parametrize("failure", sorted(SCRIPTS))
async def test_provider_error_text_stays_in_the_server_log(
    model_app: RunningApp, upstream: FakeUpstream, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture, failure: str,
) -> None:
    upstream.script = SCRIPTS[failure]
    user = await model_app.sign_up(http, "u@example.com")
    headers = {"Authorization": f"Bearer {user.token}", "Content-Type": "application/json"}
    seen: list[str] = []
    async with http.post(model_app.url + "/chat/stream", data=json.dumps({"message": "hi"}),
                         headers=headers) as resp:
        events = await read_events(resp)
    errors = [e.data for e in events if e.event == "error"]
    assert errors and errors[0]["message"], events
    seen.append(json.dumps(errors))
    chat_id = events[0].data["chat_id"]
    seen.append((await user.get(f"/api/chats/{chat_id}/messages")).text)
    seen.append((await user.get(f"/api/chats/{chat_id}")).text)
    answer = await user.post("/chat/message", {"message": "hi again", "chat_id": chat_id})
    assert answer.status >= 400 or answer.json["status"] == "error", answer.text
    seen.append(answer.text)
    key = (await user.post("/api/auth/api-keys", {"name": "k"})).json["key"]
    for stream in (False, True):
        body = {"model": "fake-model", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
        async with http.post(model_app.url + "/v1/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {key}"}) as resp:
            seen.append(await resp.text())
    for text in seen:
        for fragment in ("org-7731", "10.2.3.4", "sk-live", "quota of"):
            assert fragment not in text, text
    assert "org-7731" in caplog.text  # the operator still sees what the provider said
