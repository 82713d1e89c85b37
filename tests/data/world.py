"""Chats with branches written straight into the store, and snapshots to compare them by."""

from __future__ import annotations

from typing import Any

from gust.domain.ids import new_id, now
from gust.domain.models import Chat, Message, Role, User
from gust.ports.store import Store
from tests.support.client import Api


async def seed_chats(store: Store, user: User) -> list[str]:
    """Two chats: one with an edited question and a regenerated answer (three branches),
    one archived and pinned with a system message and an answer that stopped."""
    t = now() - 1000
    first = Chat(id=new_id(), user_id=user.id, team_id=user.team_id, title="Zebra facts",
                 model="fake-model", system_prompt="Answer briefly.", created_at=t, updated_at=t + 50)
    second = Chat(id=new_id(), user_id=user.id, team_id=user.team_id, title="Quokka notes", model=None,
                  pinned=True, archived=True, created_at=t + 1, updated_at=t + 60)
    for chat in (first, second):
        await store.create_chat(chat)

    def msg(chat: Chat, parent: Message | None, role: Role, content: str, at: float, **extra: Any) -> Message:
        return Message(id=new_id(), chat_id=chat.id, user_id=user.id, team_id=user.team_id,
                       parent_id=parent.id if parent else None, role=role,
                       content=content, status=extra.pop("status", "complete"),
                       created_at=t + at, updated_at=t + at + 0.5, **extra)

    q1 = msg(first, None, "user", "Why do zebras have stripes?", 2)
    a1 = msg(first, q1, "assistant", "Stripes deter biting flies.", 3, model="fake-model",
             usage={"prompt_tokens": 7, "completion_tokens": 5}, reasoning="flies dislike stripes")
    a1b = msg(first, q1, "assistant", "Possibly for cooling.", 4, model="fake-model",
              sources=[{"n": 1, "url": "https://example.com/zebra", "title": "Zebra"}])
    q2 = msg(first, a1, "user", "Which flies?", 5)
    a2 = msg(first, q2, "assistant", "Horseflies mostly.", 6, model="fake-model")
    q1b = msg(first, None, "user", "Why do zebras have black stripes?", 7)  # an edit of q1
    a3 = msg(first, q1b, "assistant", "Melanin makes them black.", 8, model="fake-model")
    s1 = msg(second, None, "system", "You take notes about quokkas.", 9)
    q3 = msg(second, s1, "user", "Quokka habitat?", 10)
    a4 = msg(second, q3, "assistant", "Rottnest Island", 11, status="stopped",
             error={"code": "stopped", "message": "stopped by the user"})
    for message in (q1, a1, a1b, q2, a2, q1b, a3, s1, q3, a4):
        await store.create_message(message)
    return [first.id, second.id]


def normalized(document: dict[str, Any]) -> dict[str, Any]:
    """A chat's export document without ids: messages by position, parents as positions.

    Everything else is compared as exported: titles, flags, roles, contents, reasoning,
    status, model, usage, sources, errors, and created/updated times to the microsecond."""
    position = {m["id"]: n for n, m in enumerate(document["messages"])}
    chat = {k: v for k, v in document["chat"].items() if k != "id"}
    messages = [
        {**{k: v for k, v in m.items() if k not in ("id", "parent_id")},
         "parent": position.get(m["parent_id"]) if m["parent_id"] else None}
        for m in document["messages"]
    ]
    return {"chat": chat, "messages": messages}


async def snapshot(api: Api) -> list[dict[str, Any]]:
    """Every chat of the caller (archived too) as normalized export documents, by creation."""
    docs = []
    for archived in ("false", "true"):
        listed = await api.get(f"/api/chats?archived={archived}&limit=200")
        assert listed.status == 200, listed.text
        for item in listed.json["items"]:
            resp = await api.get(f"/api/chats/{item['id']}/export?format=json")
            assert resp.status == 200, resp.text
            docs.append(normalized(resp.json))
    return sorted(docs, key=lambda d: d["chat"]["created_at"])


async def search_hits(api: Api, query: str) -> list[dict[str, Any]]:
    """Search hits without their ids (imports and restores keep everything else)."""
    resp = await api.get(f"/api/search?q={query}")
    assert resp.status == 200, resp.text
    return sorted(({k: v for k, v in hit.items() if not k.endswith("_id")} for hit in resp.json["hits"]),
                  key=lambda h: (h["created_at"], h["snippet"]))
