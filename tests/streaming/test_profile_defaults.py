"""Profile (GET/PATCH /api/auth/me): display name and the defaults a new chat starts with;
the binding order chat > agent > user default > DEFAULT_SYSTEM_PROMPT; a new chat bound to
an agent from the first message (agent_id on /chat/stream)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.streaming.helpers import deltas, stream
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.plugin import StartApp


async def test_profile_defaults_drive_new_chats(
    start_stream_app: StartApp, upstream: FakeUpstream, tmp_path: Path
) -> None:
    (tmp_path / "two").mkdir()
    app = await start_stream_app(
        models_file=upstream.models_file(tmp_path / "two", ["fake-a", "fake-b"]),
        default_system_prompt="Server default.",
    )
    upstream.script = Script(tokens=["ok"])
    async with aiohttp.ClientSession() as http:
        me = await app.sign_up(http, "prof@example.com")
        got = await me.get("/api/auth/me")
        assert got.status == 200 and got.json["default_model"] is None
        assert got.json["default_system_prompt"] is None
        # Server default prompt while the user has none.
        await stream(me, {"message": "one"})
        assert upstream.requests[-1]["model"] == "fake-a"
        assert upstream.requests[-1]["messages"][0] == {"role": "system", "content": "Server default."}

        changed = await me.patch("/api/auth/me", {"display_name": " Ada ", "default_model": "fake-b",
                                                  "default_system_prompt": "Answer in French."})
        assert changed.status == 200, changed.text
        assert changed.json["display_name"] == "Ada" and changed.json["default_model"] == "fake-b"
        events = await stream(me, {"message": "two"})
        assert deltas(events) == "ok" and events[0].data["model"] == "fake-b"
        assert upstream.requests[-1]["model"] == "fake-b"
        assert upstream.requests[-1]["messages"][0] == {"role": "system", "content": "Answer in French."}
        chat_id = events[0].data["chat_id"]
        # The chat's own prompt wins over the user's default.
        await me.patch(f"/api/chats/{chat_id}", {"system_prompt": "Chat prompt."})
        await stream(me, {"chat_id": chat_id, "message": "three"})
        assert upstream.requests[-1]["messages"][0] == {"role": "system", "content": "Chat prompt."}

        # An agent's prompt wins over the user's default; the new chat is bound from message one.
        agent = await me.post("/api/agents", {"name": "Pirate", "system_prompt": "Talk like a pirate."})
        assert agent.status == 201, agent.text
        events = await stream(me, {"message": "ahoy", "agent_id": agent.json["id"]})
        assert upstream.requests[-1]["messages"][0] == {"role": "system", "content": "Talk like a pirate."}
        chat = await me.get(f"/api/chats/{events[0].data['chat_id']}")
        assert chat.json["agent_id"] == agent.json["id"]

        # null clears: back to the server's defaults.
        cleared = await me.patch("/api/auth/me", {"default_model": None, "default_system_prompt": None})
        assert cleared.json["default_model"] is None and cleared.json["default_system_prompt"] is None
        await stream(me, {"message": "four"})
        assert upstream.requests[-1]["model"] == "fake-a"
        assert upstream.requests[-1]["messages"][0] == {"role": "system", "content": "Server default."}


async def test_profile_and_agent_bad_input(start_stream_app: StartApp, upstream: FakeUpstream) -> None:
    app = await start_stream_app()
    async with aiohttp.ClientSession() as http:
        admin = await app.sign_up(http, "admin@example.com")
        me = await app.sign_up(http, "bad@example.com")
        for body in ({"default_model": "no-such-model"}, {"default_model": 3},
                     {"display_name": ""}, {"display_name": None}, {"display_name": "x" * 101},
                     {"default_system_prompt": "p" * 20_001}, {"default_system_prompt": ["a"]},
                     {"email": "other@example.com"}, {"role": "admin"}):
            resp = await me.patch("/api/auth/me", body)
            assert resp.status == 422, (body, resp.status, resp.text)
        assert (await me.get("/api/auth/me")).json["display_name"] == "bad"
        # An unknown agent: 404 and no chat is made.
        resp = await me.post("/chat/message", {"message": "hi", "agent_id": "nope"})
        assert resp.status == 404, resp.text
        resp = await me.post("/chat/stream", {"message": "hi", "agent_id": "nope"})
        assert resp.status == 404, resp.text
        assert (await me.get("/api/chats")).json["items"] == []
        agent = await admin.post("/api/agents", {"name": "Team agent", "system_prompt": "p"})
        chat = await me.post("/api/chats", {"title": "x"})
        resp = await me.post("/chat/stream", {"message": "hi", "chat_id": chat.json["id"],
                                              "agent_id": agent.json["id"]})
        assert resp.status == 422, resp.text
        resp = await me.post("/chat/stream", {"message": "hi", "agent_id": 5})
        assert resp.status == 422, resp.text
