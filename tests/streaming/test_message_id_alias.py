"""One name for one id: `message_id` everywhere in the API, `generation_id` its deprecated alias.

Every answer the API names carries both, with the same value (also for a continuation, which
runs as a new generation into a stored answer), and the OpenAPI document says which is
which."""

from __future__ import annotations

from typing import Any

from tests.streaming.helpers import follow, stream, user_id, wait_final
from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script


def aliased(data: dict[str, Any]) -> str:
    """The answer's id, once both names are checked to carry it."""
    assert "message_id" in data and "generation_id" in data, data
    assert data["generation_id"] == data["message_id"], data
    message_id: str = data["message_id"]
    return message_id


async def test_every_answer_id_is_message_id_and_its_alias(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    # /chat/stream's start event.
    upstream.script = Script(tokens=["cut ", "short"], finish_reason="length")
    events = await stream(user, {"message": "hello"})
    start = events[0].data
    assert events[0].event == "start"
    message_id = aliased(start)
    chat_id = start["chat_id"]
    # POST .../messages (202).
    upstream.script = Script(tokens=["a"] * 50, delay=0.05)
    accepted = await user.post(f"/api/chats/{chat_id}/messages", {"message": "again"})
    assert accepted.status == 202
    running = aliased(accepted.json)
    # POST .../stop names the answer it stopped.
    stopped = await user.post(f"/api/chats/{chat_id}/stop")  # live from the 202 on
    assert stopped.status == 200 and stopped.json["stopped"] is True
    assert aliased(stopped.json) == running
    await wait_final(stream_app, await user_id(user), running)
    # A continuation runs as a new generation, yet the API names only the answer it writes.
    upstream.script = Script(tokens=[" and", " more"], delay=0.1, finish_reason="length")
    continued = await user.post(f"/api/chats/{chat_id}/messages/{message_id}/continue")
    assert continued.status == 202, continued.text
    assert aliased(continued.json) == message_id
    followed = await follow(user, chat_id)  # the live continuation
    assert aliased(followed[0].data) == message_id and followed[0].data["continues"] == "cut short"
    assert followed[-1].data["message_id"] == message_id
    # Stopping a continuation names the answer too (not the generation running into it).
    upstream.script = Script(tokens=["b"] * 50, delay=0.05)
    continued = await user.post(f"/api/chats/{chat_id}/messages/{message_id}/continue")
    assert continued.status == 202, continued.text
    stopped = await user.post(f"/api/chats/{chat_id}/stop")
    assert stopped.json["stopped"] is True and aliased(stopped.json) == message_id


def test_the_document_marks_generation_id_as_the_deprecated_alias(stream_app: RunningApp) -> None:
    schemas = stream_app.app.openapi["components"]["schemas"]
    for name in ("StartEvent", "AcceptedOut", "StopOut", "ContinuedOut"):
        alias = schemas[name]["properties"]["generation_id"]
        assert alias.get("deprecated") is True, (name, alias)
        assert "deprecated alias of message_id" in alias["description"], (name, alias)
        assert "message_id" in schemas[name]["properties"], name
