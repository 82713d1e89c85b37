"""Share links: a read-only snapshot of a chat's branch, readable without login, revocable."""

from __future__ import annotations

import aiohttp
import pytest

from gust.domain.errors import PayloadTooLarge
from gust.domain.ids import new_id
from gust.domain.models import Message, Role
from gust.services.shares import ShareService
from tests.support.app_server import RunningApp
from tests.support.backends import adapter
from tests.support.client import Api


async def add_message(
    app: RunningApp, user: Api, chat_id: str, role: Role, content: str, parent_id: str | None, at: float
) -> str:
    """A message stored in the app's real store (as a finished answer would be)."""
    me = (await user.get("/api/auth/me")).json
    message = Message(
        id=new_id(), chat_id=chat_id, user_id=me["id"], team_id=me["team_id"], role=role,
        content=content, status="complete", created_at=at, updated_at=at, parent_id=parent_id,
        usage={"prompt_tokens": 3, "completion_tokens": 4} if role == "assistant" else None,
    )
    await app.services.store.create_message(message)
    return message.id


async def chat_with_messages(app: RunningApp, user: Api) -> tuple[str, str]:
    chat = (await user.post("/api/chats", {"title": "Trip plans ✈"})).json
    q = await add_message(app, user, chat["id"], "user", "Where to in May?", None, 1000.0)
    a = await add_message(app, user, chat["id"], "assistant", "Lisbon, **definitely**.", q, 1001.0)
    return chat["id"], a


async def test_anonymous_reads_the_snapshot_and_later_messages_never_appear(
    app: RunningApp, api: Api
) -> None:
    owner = await api.register_and_login("owner@example.com")
    chat_id, answer_id = await chat_with_messages(app, owner)
    created = await owner.post(f"/api/chats/{chat_id}/share")
    assert created.status == 201, created.text
    share = created.json
    assert share["url"] == f"/s/{share['id']}" and len(share["id"]) >= 32
    assert (await owner.get(f"/api/chats/{chat_id}/share")).json["id"] == share["id"]

    # Messages added afterwards (and a title change) stay out of the snapshot.
    later = await add_message(app, owner, chat_id, "user", "And in June?", answer_id, 1002.0)
    await add_message(app, owner, chat_id, "assistant", "Oslo.", later, 1003.0)
    await owner.patch(f"/api/chats/{chat_id}", {"title": "Renamed"})

    seen = await api.get(f"/api/shares/{share['id']}", auth=False)
    assert seen.status == 200, seen.text
    assert seen.json["title"] == "Trip plans ✈"
    assert [(m["role"], m["content"]) for m in seen.json["messages"]] == [
        ("user", "Where to in May?"),
        ("assistant", "Lisbon, **definitely**."),
    ]
    assert "user_id" not in seen.text and "usage" not in seen.json["messages"][1]

    # The page itself is the UI, served without login.
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(app.url + f"/s/{share['id']}") as page:
            assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")


async def test_revoked_and_unknown_links_are_404(app: RunningApp, api: Api) -> None:
    owner = await api.register_and_login("owner@example.com")
    chat_id, _ = await chat_with_messages(app, owner)
    share = (await owner.post(f"/api/chats/{chat_id}/share")).json
    assert (await api.get(f"/api/shares/{share['id']}", auth=False)).status == 200

    assert (await owner.delete(f"/api/chats/{chat_id}/share")).status == 204
    gone = await api.get(f"/api/shares/{share['id']}", auth=False)
    assert gone.status == 404 and gone.error_code == "not_found"
    assert (await owner.get(f"/api/chats/{chat_id}/share")).status == 404
    assert (await owner.delete(f"/api/chats/{chat_id}/share")).status == 404
    assert (await api.get("/api/shares/" + "x" * 43, auth=False)).status == 404

    # Sharing again makes a new link; the old one stays dead.
    again = (await owner.post(f"/api/chats/{chat_id}/share")).json
    assert again["id"] != share["id"]
    assert (await api.get(f"/api/shares/{again['id']}", auth=False)).status == 200
    third = (await owner.post(f"/api/chats/{chat_id}/share")).json
    assert (await api.get(f"/api/shares/{again['id']}", auth=False)).status == 404
    assert (await api.get(f"/api/shares/{third['id']}", auth=False)).status == 200

    # Deleting the chat takes its link down too.
    assert (await owner.delete(f"/api/chats/{chat_id}")).status == 204
    assert (await api.get(f"/api/shares/{third['id']}", auth=False)).status == 404


async def test_another_user_cannot_share_read_or_revoke_my_chat(app: RunningApp, api: Api) -> None:
    owner = await api.register_and_login("owner@example.com")
    other = await api.register_and_login("other@example.com")
    chat_id, _ = await chat_with_messages(app, owner)
    assert (await other.post(f"/api/chats/{chat_id}/share")).status == 404
    assert (await owner.get(f"/api/chats/{chat_id}/share")).status == 404  # B created nothing
    share = (await owner.post(f"/api/chats/{chat_id}/share")).json
    assert (await other.get(f"/api/chats/{chat_id}/share")).status == 404
    assert (await other.delete(f"/api/chats/{chat_id}/share")).status == 404
    assert (await api.get(f"/api/shares/{share['id']}", auth=False)).status == 200
    anonymous = await api.post(f"/api/chats/{chat_id}/share", auth=False)
    assert anonymous.status == 401


async def test_a_chat_too_long_for_one_snapshot_is_refused_and_nothing_is_shared(
    app: RunningApp, api: Api
) -> None:
    owner = await api.register_and_login("owner@example.com")
    chat_id, _ = await chat_with_messages(app, owner)
    user = await app.services.store.get_user_by_email("owner@example.com")
    assert user is not None
    small = ShareService(adapter(app.services.store), app.services.chats, max_bytes=100)
    with pytest.raises(PayloadTooLarge):
        await small.share(user, chat_id)
    assert (await owner.get(f"/api/chats/{chat_id}/share")).status == 404
    assert (await owner.post(f"/api/chats/{chat_id}/share")).status == 201  # the default limit fits
