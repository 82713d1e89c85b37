"""Regenerate and edit create branches; GET /api/chats/{id} shows one branch with siblings."""

from __future__ import annotations

from tests.streaming.helpers import follow, stream
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script


async def test_regenerate_adds_a_sibling_and_edit_creates_a_branch(user: Api, upstream: FakeUpstream) -> None:
    upstream.script = Script(tokens=["first answer"])
    events = await stream(user, {"message": "question"})
    chat_id, answer_id = events[0].data["chat_id"], events[0].data["message_id"]
    question_id = events[0].data["user_message_id"]

    upstream.script = Script(tokens=["second answer"])
    regen = await user.post(f"/api/chats/{chat_id}/messages/{answer_id}/regenerate", {})
    assert regen.status == 202 and regen.json["user_message_id"] is None
    regen_events = await follow(user, chat_id)
    assert regen_events[0].data["parent_id"] == question_id
    assert regen_events[-1].data["status"] == "complete"

    chat = (await user.get(f"/api/chats/{chat_id}")).json
    assert [m["content"] for m in chat["messages"]] == ["question", "second answer"]
    assert chat["messages"][1]["sibling_ids"] == [answer_id, regen.json["message_id"]]
    # The history sent upstream for the regeneration excluded the first answer.
    assert [m["content"] for m in upstream.requests[-1]["messages"]] == ["question"]

    # Edit the question, the chat's first message: `"parent_id": null` starts a new root.
    upstream.script = Script(tokens=["edited answer"])
    edited = await stream(user, {"chat_id": chat_id, "message": "better question", "parent_id": None})
    assert edited[0].data["parent_id"] == edited[0].data["user_message_id"]
    chat = (await user.get(f"/api/chats/{chat_id}")).json
    assert [m["content"] for m in chat["messages"]] == ["better question", "edited answer"]
    assert chat["messages"][0]["sibling_ids"] == [question_id, edited[0].data["user_message_id"]]
    assert [m["content"] for m in upstream.requests[-1]["messages"]] == ["better question"]
    # Without parent_id the conversation continues the current branch.
    follow_up = await stream(user, {"chat_id": chat_id, "message": "and then?"})
    chat = (await user.get(f"/api/chats/{chat_id}")).json
    assert [m["content"] for m in chat["messages"]][:2] == ["better question", "edited answer"]
    assert chat["messages"][-2]["id"] == follow_up[0].data["user_message_id"]

    # Switching back to the first branch through ?leaf=.
    old = (await user.get(f"/api/chats/{chat_id}?leaf={answer_id}")).json
    assert [m["content"] for m in old["messages"]] == ["question", "first answer"]


async def test_edit_of_the_first_message_creates_a_root_sibling(user: Api, upstream: FakeUpstream) -> None:
    events = await stream(user, {"message": "original"})
    chat_id = events[0].data["chat_id"]
    second = await stream(user, {"chat_id": chat_id, "message": "follow-up"})
    follow_up_id = second[0].data["user_message_id"]
    # Editing "follow-up" = posting with the parent of follow-up (the first answer).
    edit = await stream(
        user, {"chat_id": chat_id, "message": "edited follow-up", "parent_id": events[0].data["message_id"]}
    )
    chat = (await user.get(f"/api/chats/{chat_id}")).json
    contents = [m["content"] for m in chat["messages"]]
    assert contents[:3] == ["original", contents[1], "edited follow-up"]
    assert chat["messages"][2]["sibling_ids"] == [follow_up_id, edit[0].data["user_message_id"]]
    unknown = await user.post("/chat/stream", {"chat_id": chat_id, "message": "x", "parent_id": "nope"})
    assert unknown.status == 404
