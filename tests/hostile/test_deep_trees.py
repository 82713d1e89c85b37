"""Long chats on every route that walks a message tree, and exports that fail cleanly
(issue 18, finding 6): a 5,000-message branch through the chat view, the share page, the
Markdown, JSON and ZIP exports and imports (Gust and ChatGPT formats); a ZIP export that
fails on any chat is an error status, never a 200 with a broken archive.
"""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from typing import Any

import pytest

from gust.domain.ids import new_id, now
from gust.domain.models import Chat, Message, Role, User
from tests.data.world import seed_chats
from tests.support.app_server import RunningApp
from tests.support.client import Api

LENGTH = 5000


async def me(app: RunningApp, api: Api) -> User:
    user = await app.services.store.get_user((await api.get("/api/auth/me")).json["id"])
    assert user is not None
    return user


async def seed_branch(app: RunningApp, user: User, length: int) -> Chat:
    """One chat whose only branch is `length` messages long, plus a regenerated last answer."""
    store = app.services.store
    t = now() - 2 * length
    chat = Chat(id=new_id(), user_id=user.id, team_id=user.team_id, title="Marathon", model=None,
                created_at=t, updated_at=t + length)
    await store.create_chat(chat)
    parent: str | None = None
    for n in range(length):
        role: Role = "user" if n % 2 == 0 else "assistant"
        message = Message(id=new_id(), chat_id=chat.id, user_id=user.id, team_id=user.team_id,
                          parent_id=parent, role=role, content=f"message {n}", status="complete",
                          created_at=t + n, updated_at=t + n)
        await store.create_message(message)
        previous, parent = parent, message.id
    await store.create_message(Message(
        id=new_id(), chat_id=chat.id, user_id=user.id, team_id=user.team_id, parent_id=previous,
        role="assistant", content="the last answer, again", status="complete",
        created_at=t + length, updated_at=t + length))
    return chat


async def raw_get(api: Api, path: str) -> tuple[int, str, bytes]:
    headers = {"Authorization": f"Bearer {api.token}"}
    async with api.session.get(api.base_url + path, headers=headers) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


def chatgpt_chain(length: int) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for n in range(length):
        mapping[f"n{n}"] = {
            "id": f"n{n}", "parent": f"n{n - 1}" if n else None,
            "children": [f"n{n + 1}"] if n + 1 < length else [],
            "message": {"author": {"role": "user" if n % 2 == 0 else "assistant"},
                        "create_time": 1_700_000_000 + n, "content": {"parts": [f"message {n}"]}},
        }
    return {"title": "Long ChatGPT chat", "create_time": 1_700_000_000, "mapping": mapping}


# The walks do not depend on the store; FerretDB takes minutes to write 15,000 messages.
async def test_a_5000_message_branch_works_on_every_route(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    chat = await seed_branch(app, await me(app, alice), LENGTH)

    view = await alice.get(f"/api/chats/{chat.id}")
    assert view.status == 200 and len(view.json["messages"]) == LENGTH
    assert view.json["messages"][-1]["content"] == "the last answer, again"
    assert len(view.json["messages"][-1]["sibling_ids"]) == 2

    share = await alice.post(f"/api/chats/{chat.id}/share")
    assert share.status in (200, 201), share.text
    shared = await alice.get(f"/api/shares/{share.json['id']}", auth=False)
    assert shared.status == 200 and len(shared.json["messages"]) == LENGTH

    status, _, body = await raw_get(alice, f"/api/chats/{chat.id}/export?format=md")
    text = body.decode()
    assert status == 200 and "message 4997" in text and text.count("## ") == LENGTH + 1
    doc = await alice.get(f"/api/chats/{chat.id}/export?format=json")
    assert doc.status == 200 and len(doc.json["messages"]) == LENGTH + 1

    status, _, archive = await raw_get(alice, "/api/export")
    assert status == 200
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        assert zf.testzip() is None
        assert f"message {LENGTH - 2}" in zf.read(f"chats/{chat.id}.md").decode()

    resp = await alice.post("/api/import", [doc.json, chatgpt_chain(LENGTH)])
    assert resp.status == 200, resp.text
    assert [c["messages"] for c in resp.json["imported"]] == [LENGTH + 1, LENGTH]
    for imported in resp.json["imported"]:
        branch = (await alice.get(f"/api/chats/{imported['chat_id']}")).json["messages"]
        assert len(branch) == LENGTH


@pytest.mark.both_stores
async def test_the_iterative_transcript_keeps_branches_in_order(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    first, _ = await seed_chats(app.services.store, await me(app, alice))
    status, _, body = await raw_get(alice, f"/api/chats/{first}/export?format=md")
    assert status == 200
    headings = [line for line in body.decode().splitlines() if line.startswith("#")]
    assert headings == [
        "# Zebra facts",
        "## User (branch 1)",
        "### Assistant (branch 1.1)",
        "#### User (branch 1.1)",
        "#### Assistant (branch 1.1)",
        "### Assistant (branch 1.2)",
        "## User (branch 2)",
        "### Assistant (branch 2)",
    ]


# On SQLite only: the row is corrupted with sqlite3.
async def test_a_failure_in_the_middle_of_a_zip_export_is_an_error_not_a_broken_zip(
    app: RunningApp, api: Api
) -> None:
    """60 chats; the 30th chat's message cannot be read back (a corrupt row): the export
    answers an error status with a JSON body, not 200 and an archive cut in the middle."""
    alice = await api.register_and_login("alice@example.com")
    user = await me(app, alice)
    store = app.services.store
    broken: str | None = None
    for n in range(60):
        at = now() - 1000 + n
        chat = Chat(id=new_id(), user_id=user.id, team_id=user.team_id, title=f"Chat {n}", model=None,
                    created_at=at, updated_at=at)
        await store.create_chat(chat)
        message = Message(id=new_id(), chat_id=chat.id, user_id=user.id, team_id=user.team_id, role="user",
                          content=f"text {n}", status="complete", created_at=at, updated_at=at)
        await store.create_message(message)
        if n == 30:
            broken = message.id
    db = sqlite3.connect(app.settings.data_dir / "gust.db")
    with db:
        db.execute("UPDATE messages SET data = '{}' WHERE id = ?", (broken,))  # no fields: unreadable
    db.close()

    status, content_type, body = await raw_get(alice, "/api/export")
    assert status >= 500 and content_type.startswith("application/json"), (status, content_type)
    assert json.loads(body)["error"]["code"] == "internal_error"
    assert not body.startswith(b"PK")
    # The other exports of this user still work.
    assert (await alice.get("/api/chats?limit=5")).status == 200
