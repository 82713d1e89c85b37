"""The OpenAI-compatible API, driven by the official `openai` client against the real app."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai
import pytest

from gust.services.reconcile import Reconciler
from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.fake_upstream import DEFAULT_TOKENS, FakeUpstream, Script
from tests.support.wait import until

ANSWER = "".join(DEFAULT_TOKENS)


async def api_key(user: Api) -> str:
    created = await user.post("/api/auth/api-keys", {"name": "script"})
    assert created.status == 201, created.text
    key: str = created.json["key"]
    return key


def client(app: RunningApp, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=app.url + "/v1", api_key=key, max_retries=0)


async def usage_totals(user: Api) -> dict[str, int]:
    report = await user.get("/api/usage")
    assert report.status == 200, report.text
    totals: dict[str, int] = report.json["totals"]
    return totals


async def test_openai_client_streams_and_usage_is_recorded(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    oai = client(stream_app, await api_key(user))
    models = await oai.models.list()
    assert [m.id for m in models.data] == ["fake-model"]

    stream = await oai.chat.completions.create(
        model="fake-model",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = [], None, None
    async for chunk in stream:
        assert chunk.object == "chat.completion.chunk" and chunk.model == "fake-model"
        if chunk.choices:
            text.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert "".join(text) == ANSWER
    assert finish == "stop"
    assert usage is not None and usage.prompt_tokens == 11 and usage.completion_tokens == len(DEFAULT_TOKENS)
    sent = upstream.requests[-1]
    assert sent["messages"] == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]

    totals = await usage_totals(user)
    assert totals["messages"] == 1
    assert totals["prompt_tokens"] == 11 and totals["completion_tokens"] == len(DEFAULT_TOKENS)
    # Not saved: no chat appears and no message is stored (the usage is a usage record, not
    # a message of a phantom chat), so search has nothing to index.
    assert (await user.get("/api/chats")).json["items"] == []
    indexer = stream_app.services.indexer
    assert indexer is not None
    report = await Reconciler(indexer, full=True).run()
    assert report is not None and report.messages == 0 and report.sent == 0
    assert await indexer.index.count() == 0


async def test_openai_client_without_streaming(stream_app: RunningApp, user: Api) -> None:
    oai = client(stream_app, await api_key(user))
    done = await oai.chat.completions.create(
        model="fake-model",
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}],
            }
        ],
    )
    assert done.object == "chat.completion"
    assert done.choices[0].message.content == ANSWER
    assert done.choices[0].message.role == "assistant"
    assert done.choices[0].finish_reason == "stop"
    assert (
        done.usage is not None
        and done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    )
    totals = await usage_totals(user)
    assert totals["messages"] == 1 and totals["completion_tokens"] == done.usage.completion_tokens


async def test_bad_key_gets_openais_401(stream_app: RunningApp, http: aiohttp.ClientSession) -> None:
    oai = client(stream_app, "gust_not-a-real-key")
    with pytest.raises(openai.AuthenticationError) as caught:
        await oai.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    async with http.get(stream_app.url + "/v1/models") as resp:
        body = await resp.json()
        assert resp.status == 401
        assert set(body["error"]) == {"message", "type", "param", "code"}


async def test_unknown_model_and_invalid_messages(stream_app: RunningApp, user: Api) -> None:
    oai = client(stream_app, await api_key(user))
    with pytest.raises(openai.NotFoundError) as missing:
        await oai.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as bad_role:
        await oai.chat.completions.create(model="fake-model", messages=[{"role": "wizard", "content": "hi"}])  # type: ignore[misc,list-item]
    assert bad_role.value.status_code == 400
    with pytest.raises(openai.BadRequestError):
        await oai.chat.completions.create(model="fake-model", messages=[])
    assert (await usage_totals(user))["messages"] == 0


async def test_upstream_failure_mid_stream_is_an_error_chunk(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    upstream.script = Script(close_after=3)
    oai = client(stream_app, await api_key(user))
    stream = await oai.chat.completions.create(
        model="fake-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError):
        async for chunk in stream:
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "".join(DEFAULT_TOKENS[:3])


async def test_upstream_refusal_before_streaming_is_an_openai_error(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    upstream.script = Script(status=400)
    key = await api_key(user)
    async with aiohttp.ClientSession() as http:
        body = {"model": "fake-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        headers = {"Authorization": f"Bearer {key}"}
        async with http.post(stream_app.url + "/v1/chat/completions", json=body, headers=headers) as resp:
            assert resp.status >= 400
            error = json.loads(await resp.text())["error"]
            assert set(error) == {"message", "type", "param", "code"}


async def test_save_header_stores_the_exchange_as_a_chat(stream_app: RunningApp, user: Api) -> None:
    oai = client(stream_app, await api_key(user))
    done = await oai.chat.completions.create(
        model="fake-model",
        messages=[{"role": "user", "content": "remember this"}],
        extra_headers={"X-Gust-Save": "true"},
    )
    assert done.choices[0].message.content == ANSWER
    chats = (await user.get("/api/chats")).json["items"]
    assert len(chats) == 1 and chats[0]["title"] == "remember this"
    messages = (await user.get(f"/api/chats/{chats[0]['id']}/messages")).json["items"]
    assert [(m["role"], m["content"]) for m in messages] == [("user", "remember this"), ("assistant", ANSWER)]
    assert messages[1]["usage"]["completion_tokens"] == done.usage.completion_tokens  # type: ignore[union-attr]
    assert (await usage_totals(user))["messages"] == 1


async def test_over_the_message_rate_limit_is_openais_429(
    start_stream_app: Any, http: aiohttp.ClientSession
) -> None:
    app: RunningApp = await start_stream_app(rate_limit_messages_per_minute=2)
    user = await Api(app.url, http).register_and_login("limited@example.com")
    oai = client(app, await api_key(user))
    for _ in range(2):
        await oai.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.RateLimitError) as caught:
        await oai.chat.completions.create(model="fake-model", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 429
    assert caught.value.response.headers.get("Retry-After")
    body = caught.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}
    assert (await usage_totals(user))["messages"] == 2


async def test_a_client_that_hangs_up_stops_the_upstream_and_usage_is_estimated(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    upstream.script = Script(tokens=[f"t{i} " for i in range(400)], delay=0.02)
    key = await api_key(user)
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "long"}], "stream": True}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            stream_app.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as resp:
            assert resp.status == 200
            seen = 0
            async for line in resp.content:
                if line.startswith(b"data: ") and b'"content":"t' in line:
                    seen += 1
                if seen == 3:
                    break
    # The upstream sees the hang-up long before its 400 tokens (8 s) are sent.
    assert await until(lambda: upstream.disconnects > 0, timeout=5)
    assert upstream.disconnects == 1 and upstream.completed == 0

    async def counted() -> bool:
        return bool((await usage_totals(user))["messages"] > 0)

    assert await until(counted, timeout=5), "the cut answer was never counted"
    report = (await user.get("/api/usage")).json["totals"]
    assert report["messages"] == 1 and report["estimated_messages"] == 1
