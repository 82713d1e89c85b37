"""The OpenAPI document describes the streams as they are: each event type the server
sends (SSE and NDJSON, /chat/stream, /api/chats/{id}/events, /v1 chunks) is published with
its schema, and every event of real streams validates against the published schema."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from openapi_schema_validator import OAS31Validator

from tests.streaming.helpers import auth, follow, stream, user_id, wait_final
from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script, ScriptedCall
from tests.support.plugin import StartApp
from tests.support.site_server import SiteServer

STREAMS = [("/chat/stream", "post"), ("/api/chats/{chat_id}/events", "get")]
EVENT_TYPES = {
    "start", "status", "reasoning", "delta", "resync", "sources", "tool_call", "tool_result", "usage",
    "error", "done", "ping",
}  # fmt: skip


def component(document: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def validator(document: dict[str, Any], ref: str) -> OAS31Validator:
    return OAS31Validator({"$ref": ref, "components": document["components"]})


def media_ref(document: dict[str, Any], path: str, method: str, media: str) -> str:
    content = document["paths"][path][method]["responses"]["200"]["content"]
    assert media in content, (path, media, list(content))
    schema = content[media]["schema"]
    if media == "text/event-stream":  # an SSE event, whose `data` is JSON of the event schema
        data = schema["properties"]["data"]
        schema = next(alt for alt in data.get("anyOf", [data]) if "contentSchema" in alt)["contentSchema"]
    ref: str = schema["$ref"]
    return ref


@pytest.fixture
async def site() -> AsyncIterator[SiteServer]:
    server = await SiteServer(hosts=("127.0.0.1",)).start()
    yield server
    await server.stop()


def test_the_document_publishes_the_stream_schemas(stream_app: RunningApp) -> None:
    document = stream_app.app.openapi
    for path, method in STREAMS:
        refs = {media_ref(document, path, method, m) for m in ("text/event-stream", "application/x-ndjson")}
        assert len(refs) == 1, refs
        union = component(document, refs.pop())
        assert union["discriminator"]["propertyName"] == "type"
        assert set(union["discriminator"]["mapping"]) == EVENT_TYPES
        assert len(union["oneOf"]) == len(EVENT_TYPES)
        for name, ref in union["discriminator"]["mapping"].items():
            assert component(document, ref)["properties"]["type"]["const"] == name
    v1 = "/v1/chat/completions"
    chunk = component(document, media_ref(document, v1, "post", "text/event-stream"))
    assert {s["$ref"].rsplit("/", 1)[1] for s in chunk["anyOf"]} == {
        "ChatCompletionChunkOut",
        "ChunkErrorOut",
    }
    assert media_ref(document, v1, "post", "application/json").endswith("/ChatCompletionOut")


async def ndjson_events(api: Api, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with api.session.post(
        api.base_url + "/chat/stream", data=json.dumps(body), headers=auth(api, Accept="application/x-ndjson")
    ) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/x-ndjson"
        return [json.loads(line) for line in (await resp.text()).splitlines() if line]


async def v1_lines(app: RunningApp, key: str, body: dict[str, Any]) -> list[str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            app.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
        ) as resp,
    ):
        assert resp.status == 200
        text = await resp.text()
    return [line[len("data: ") :] for line in text.split("\n\n") if line.startswith("data: ")]


async def test_every_event_of_real_streams_validates_against_the_document(
    start_stream_app: StartApp, upstream: FakeUpstream, site: SiteServer, tmp_path: Path
) -> None:
    tools_dir = tmp_path / "tools"
    tools_dir.mkdir()
    app = await start_stream_app(
        ssrf_allowed_hosts="127.0.0.1", sse_ping_interval=0.05, stream_grace_period=0,
        models_file=upstream.models_file(tools_dir, features=["streaming", "tools"]),
    )
    document = app.app.openapi
    events_schema = validator(document, media_ref(document, "/chat/stream", "post", "text/event-stream"))
    seen: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        api = await app.sign_up(http, "schema@example.com")
        # Research (status, sources), reasoning, answer, usage: SSE.
        upstream.script = Script(reasoning=["Let me ", "think."])
        events = await stream(api, {"message": f"Summarise {site.url('/article/tides')}"})
        assert all(e.event == e.data["type"] for e in events)
        seen += [e.data for e in events]
        chat_id = events[0].data["chat_id"]
        # A tool call and its result (issue 21).
        upstream.script = Script.calling(ScriptedCall("current_time"), then=Script(tokens=["Noon."]))
        body = {"message": "time?", "chat_id": chat_id, "tools": ["current_time"]}
        seen += [e.data for e in await stream(api, body)]
        # A failing upstream: error, then done.
        upstream.script = Script(status=500)
        seen += [e.data for e in await stream(api, {"message": "fail", "chat_id": chat_id})]
        # NDJSON, with pings while the upstream is slow to start.
        upstream.script = Script(first_token_delay=0.5)
        seen += await ndjson_events(api, {"message": "slow", "chat_id": chat_id})
        # /api/chats/{id}/events once the log is gone: the stored answer's text (resync) and done.
        final = seen[-1]
        await wait_final(app, await user_id(api), final["message_id"])
        seen += [e.data for e in await follow(api, chat_id)]

        problems = [(e, err.message) for e in seen for err in events_schema.iter_errors(e)]
        assert problems == []
        assert {e["type"] for e in seen} == EVENT_TYPES

        # /v1: chunks with usage, and a failure mid-stream as an error chunk.
        key = (await api.post("/api/auth/api-keys", {"name": "schema"})).json["key"]
        chunk_schema = validator(
            document, media_ref(document, "/v1/chat/completions", "post", "text/event-stream")
        )
        upstream.script = Script(reasoning=["hm"])
        body = {
            "model": "fake-model",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        lines = await v1_lines(app, key, body)
        upstream.script = Script(close_after=1)
        failed = await v1_lines(app, key, body)
        assert lines[-1] == failed[-1] == "[DONE]"
        chunks = [json.loads(line) for line in lines[:-1] + failed[:-1]]
        assert any("error" in c for c in chunks) and any(c.get("usage") for c in chunks)
        assert [err.message for c in chunks for err in chunk_schema.iter_errors(c)] == []
        upstream.script = Script()
        whole = await api.post("/v1/chat/completions", {**body, "stream": False}, token=key)
        json_schema = validator(
            document, media_ref(document, "/v1/chat/completions", "post", "application/json")
        )
        assert [err.message for err in json_schema.iter_errors(whole.json)] == []
