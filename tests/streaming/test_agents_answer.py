"""A chat bound to a team agent answers with the agent's model, system prompt or webhook."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.streaming.helpers import deltas, stream
from tests.support.env import bound_port
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.plugin import StartApp


@pytest.fixture
async def webhook_server() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    seen: list[dict[str, object]] = []

    async def answer(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer agent-secret":
            return web.json_response({"error": "bad token"}, status=401)
        seen.append(await request.json())
        return web.json_response({"content": "answer from the workflow"})

    app = web.Application()
    app.router.add_post("/hook", answer)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = bound_port(runner)
    yield f"http://127.0.0.1:{port}/hook", seen
    await runner.cleanup()


async def test_agent_model_and_prompt_are_used(
    start_stream_app: StartApp, upstream: FakeUpstream, tmp_path: Path
) -> None:
    (tmp_path / "two").mkdir()
    app = await start_stream_app(models_file=upstream.models_file(tmp_path / "two", ["fake-a", "fake-b"]))
    upstream.script = Script(tokens=["Arr"])
    async with aiohttp.ClientSession() as http:
        admin = await app.sign_up(http, "boss@example.com")
        agent = await admin.post(
            "/api/agents", {"name": "Pirate", "model": "fake-b", "system_prompt": "Talk like a pirate."}
        )
        assert agent.status == 201, agent.text
        chat = await admin.post("/api/chats", {"agent_id": agent.json["id"]})
        events = await stream(admin, {"chat_id": chat.json["id"], "message": "hello"})
        assert deltas(events) == "Arr" and events[0].data["model"] == "fake-b"
        sent = upstream.requests[-1]
        assert sent["model"] == "fake-b"
        assert sent["messages"][0] == {"role": "system", "content": "Talk like a pirate."}
        # The chat's own system prompt wins over the agent's; an explicit model over the agent's.
        await admin.patch(f"/api/chats/{chat.json['id']}", {"system_prompt": "Be brief."})
        events = await stream(admin, {"chat_id": chat.json["id"], "message": "again", "model": "fake-a"})
        assert upstream.requests[-1]["model"] == "fake-a"
        assert upstream.requests[-1]["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_agent_webhook_answers_and_bad_token_is_an_error_event(
    start_stream_app: StartApp, webhook_server: tuple[str, list[dict[str, object]]], tmp_path: Path
) -> None:
    url, seen = webhook_server
    app = await start_stream_app(ssrf_allowed_hosts="127.0.0.1")  # the webhook is on loopback
    async with aiohttp.ClientSession() as http:
        admin = await app.sign_up(http, "n8n@example.com")
        agent = await admin.post(
            "/api/agents",
            {
                "name": "Flow",
                "system_prompt": "Be a workflow.",
                "webhook": {"url": url, "token": "agent-secret"},
            },
        )
        assert agent.status == 201, agent.text
        chat = await admin.post("/api/chats", {"agent_id": agent.json["id"]})
        events = await stream(admin, {"chat_id": chat.json["id"], "message": "run it"})
        assert deltas(events) == "answer from the workflow"
        assert events[-1].data["status"] == "complete"
        assert seen[-1]["system_prompt"] == "Be a workflow."
        assert json.loads(json.dumps(seen[-1]["messages"]))[-1] == {"role": "user", "content": "run it"}
        # A wrong token: the stream reports it as an error event.
        await admin.request(
            "PUT",
            f"/api/agents/{agent.json['id']}",
            json_body={"name": "Flow", "webhook": {"url": url, "token": "wrong"}},
        )
        events = await stream(admin, {"chat_id": chat.json["id"], "message": "again"})
        assert events[-2].event == "error" and events[-2].data["code"] == "upstream_auth"
