"""A new chat's system prompt sent with its first message (POST /chat/stream, /chat/message)."""

from __future__ import annotations

import aiohttp

from tests.streaming.helpers import stream
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream
from tests.support.openapi_check import OpenAPIChecker
from tests.support.plugin import StartApp


async def test_a_new_chat_is_created_with_the_system_prompt(
    start_stream_app: StartApp, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    app = await start_stream_app()
    user = await Api(app.url, http, OpenAPIChecker(app.app.openapi)).register_and_login("sp@example.com")
    events = await stream(user, {"message": "Hello", "system_prompt": "Answer like a pirate."})
    chat_id = events[0].data["chat_id"]
    assert upstream.requests[0]["messages"][0] == {"role": "system", "content": "Answer like a pirate."}
    assert (await user.get(f"/api/chats/{chat_id}")).json["system_prompt"] == "Answer like a pirate."

    plain = await user.post("/chat/message", {"message": "Hi", "system_prompt": "Be brief."})
    assert plain.status == 200
    assert (await user.get(f"/api/chats/{plain.json['chat_id']}")).json["system_prompt"] == "Be brief."

    # An existing chat's prompt changes with PATCH, never silently with a message.
    refused = await user.post("/chat/stream", {"message": "Again", "chat_id": chat_id, "system_prompt": "x"})
    assert refused.status == 422 and refused.json["error"]["field"] == "system_prompt"
    wrong = await user.post("/chat/stream", {"message": "Hi", "system_prompt": 5})
    assert wrong.status == 422
    long = await user.post("/chat/stream", {"message": "Hi", "system_prompt": "x" * 20_001})
    assert long.status == 422
    assert (await user.get(f"/api/chats/{chat_id}")).json["system_prompt"] == "Answer like a pirate."
