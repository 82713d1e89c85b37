"""The Store contract: behaviour every adapter must share."""

from __future__ import annotations

import asyncio

import pytest

from gust.domain.errors import Conflict, ValidationError
from gust.domain.ids import new_id
from gust.domain.models import Chat, Message, MessageStatus, Team, User
from gust.ports.store import Store
from tests.support.wait import until


def make_user(email: str, team_id: str = "t1") -> User:
    return User(id=new_id(), email=email, display_name=email.split("@")[0], role="user",
                team_id=team_id, created_at=1000.0, password_hash="$2b$04$x")


def make_chat(user: User, updated_at: float, title: str = "chat") -> Chat:
    return Chat(id=new_id(), user_id=user.id, team_id=user.team_id, title=title, model=None,
                created_at=updated_at, updated_at=updated_at)


def make_message(chat: Chat, created_at: float, content: str = "hi", parent: str | None = None,
                 status: MessageStatus = "complete") -> Message:
    return Message(id=new_id(), chat_id=chat.id, user_id=chat.user_id, role="user", content=content,
                   status=status, created_at=created_at, updated_at=created_at,
                   parent_id=parent, team_id=chat.team_id)


async def test_ping(store: Store) -> None:
    await store.ping()


async def test_users_roundtrip_and_unique_email(store: Store) -> None:
    user = make_user("a@example.com")
    user.identities = [{"provider": "oidc", "subject": "s1"}]
    await store.create_user(user)
    assert await store.get_user(user.id) == user
    assert await store.get_user_by_email("a@example.com") == user
    assert await store.get_user_by_email("nobody@example.com") is None
    assert await store.count_users() == 1
    with pytest.raises(Conflict):
        await store.create_user(make_user("a@example.com"))
    updated = await store.update_user(user.id, {"display_name": "Ann", "token_version": 3})
    assert updated is not None and updated.display_name == "Ann" and updated.token_version == 3
    assert (await store.get_user(user.id)) == updated
    assert await store.update_user("missing", {"display_name": "x"}) is None


async def test_update_user_to_taken_email_conflicts(store: Store) -> None:
    a, b = make_user("a@example.com"), make_user("b@example.com")
    await store.create_user(a)
    await store.create_user(b)
    with pytest.raises(Conflict):
        await store.update_user(b.id, {"email": "a@example.com"})


async def test_update_refuses_unknown_fields(store: Store) -> None:
    user = make_user("a@example.com")
    await store.create_user(user)
    with pytest.raises(ValidationError):
        await store.update_user(user.id, {"nope": 1})
    with pytest.raises(ValidationError):
        await store.update_user(user.id, {"id": "other"})


async def test_teams(store: Store) -> None:
    team = Team(id="default", name="Default", created_at=1.0)
    await store.create_team(team)
    assert await store.get_team("default") == team
    assert await store.get_team("missing") is None
    with pytest.raises(Conflict):
        await store.create_team(team)


async def test_chats_are_scoped_to_owner(store: Store) -> None:
    alice, bob = make_user("a@example.com"), make_user("b@example.com")
    chat = make_chat(alice, 10.0)
    await store.create_chat(chat)
    assert await store.get_chat(alice.id, chat.id) == chat
    assert await store.get_chat(bob.id, chat.id) is None
    assert await store.update_chat(bob.id, chat.id, {"title": "stolen"}) is None
    assert await store.delete_chat(bob.id, chat.id) is False
    assert await store.list_chats(bob.id, limit=10) == []
    assert (await store.get_chat(alice.id, chat.id)) == chat


async def test_list_chats_newest_first_with_cursor(store: Store) -> None:
    user = make_user("a@example.com")
    chats = [make_chat(user, float(t)) for t in (5, 1, 3, 3, 4, 2)]
    for chat in chats:
        await store.create_chat(chat)
    expected = sorted(chats, key=lambda c: (c.updated_at, c.id), reverse=True)
    seen: list[Chat] = []
    after = None
    while True:
        page = await store.list_chats(user.id, limit=2, after=after)
        if not page:
            break
        seen += page
        after = (page[-1].updated_at, page[-1].id)
    assert [c.id for c in seen] == [c.id for c in expected]


async def test_list_chats_archived_filter(store: Store) -> None:
    user = make_user("a@example.com")
    live, old = make_chat(user, 1.0), make_chat(user, 2.0)
    old.archived = True
    await store.create_chat(live)
    await store.create_chat(old)
    assert [c.id for c in await store.list_chats(user.id, limit=10, archived=False)] == [live.id]
    assert [c.id for c in await store.list_chats(user.id, limit=10, archived=True)] == [old.id]
    assert len(await store.list_chats(user.id, limit=10)) == 2


async def test_update_chat_moves_it_in_the_list(store: Store) -> None:
    user = make_user("a@example.com")
    first, second = make_chat(user, 1.0), make_chat(user, 2.0)
    await store.create_chat(first)
    await store.create_chat(second)
    updated = await store.update_chat(user.id, first.id, {"updated_at": 3.0, "pinned": True, "title": "T"})
    assert updated is not None and updated.pinned and updated.title == "T"
    assert [c.id for c in await store.list_chats(user.id, limit=10)] == [first.id, second.id]


async def test_delete_chat_deletes_its_messages(store: Store) -> None:
    user = make_user("a@example.com")
    chat, other = make_chat(user, 1.0), make_chat(user, 2.0)
    await store.create_chat(chat)
    await store.create_chat(other)
    await store.create_message(make_message(chat, 1.0))
    kept = make_message(other, 1.0)
    await store.create_message(kept)
    assert await store.delete_chat(user.id, chat.id) is True
    assert await store.get_chat(user.id, chat.id) is None
    assert await store.list_messages(user.id, chat.id) == []
    assert await store.list_messages(user.id, other.id) == [kept]
    assert await store.delete_chat(user.id, chat.id) is False


async def test_messages_roundtrip_order_and_scope(store: Store) -> None:
    alice, bob = make_user("a@example.com"), make_user("b@example.com")
    chat = make_chat(alice, 1.0)
    await store.create_chat(chat)
    first = make_message(chat, 2.0, "first")
    second = make_message(chat, 3.0, "second ünïcode ✓", parent=first.id)
    second.usage = {"prompt_tokens": 3, "completion_tokens": 5}
    second.sources = [{"n": 1, "url": "https://example.com", "title": "Ex"}]
    await store.create_message(second)
    await store.create_message(first)
    assert await store.list_messages(alice.id, chat.id) == [first, second]
    assert await store.get_message(alice.id, second.id) == second
    assert await store.get_message(bob.id, second.id) is None
    assert await store.list_messages(bob.id, chat.id) == []


async def test_update_message_and_status_listing(store: Store) -> None:
    user = make_user("a@example.com")
    chat = make_chat(user, 1.0)
    await store.create_chat(chat)
    streaming = make_message(chat, 2.0, "", status="streaming")
    done = make_message(chat, 3.0, "done")
    await store.create_message(streaming)
    await store.create_message(done)
    assert [m.id for m in await store.list_messages_by_status("streaming", limit=10)] == [streaming.id]
    await store.update_message(user.id, streaming.id, {"content": "partial", "status": "interrupted"})
    await store.update_message("someone-else", done.id, {"content": "hijacked"})
    assert await store.list_messages_by_status("streaming", limit=10) == []
    got = await store.get_message(user.id, streaming.id)
    assert got is not None and got.content == "partial" and got.status == "interrupted"
    assert (await store.get_message(user.id, done.id)) == done


async def test_update_message_if_status_is_a_compare_and_set(store: Store) -> None:
    user = make_user("cas@example.com")
    chat = make_chat(user, 1.0)
    await store.create_chat(chat)
    answer = make_message(chat, 2.0, "", status="streaming")
    await store.create_message(answer)
    # The owner finishes the answer first...
    assert await store.update_message(user.id, answer.id, {"content": "all of it", "status": "complete"})
    # ...so a reaper that read it as streaming a moment before changes nothing.
    reaped = {"status": "interrupted", "content": "part"}
    assert not await store.update_message(user.id, answer.id, reaped, if_status="streaming")
    got = await store.get_message(user.id, answer.id)
    assert got is not None and got.status == "complete" and got.content == "all of it"
    assert not await store.update_message("someone-else", answer.id, {"content": "x"})
    other = make_message(chat, 3.0, "", status="streaming")
    await store.create_message(other)
    assert await store.update_message(user.id, other.id, reaped, if_status="streaming")
    got = await store.get_message(user.id, other.id)
    assert got is not None and got.status == "interrupted"


async def test_locks(store: Store) -> None:
    assert await store.acquire_lock("reconcile", "a", ttl=30)
    assert await store.acquire_lock("reconcile", "a", ttl=30)  # renew by the holder
    assert not await store.acquire_lock("reconcile", "b", ttl=30)
    await store.release_lock("reconcile", "b")  # not the holder: no effect
    assert not await store.acquire_lock("reconcile", "b", ttl=30)
    await store.release_lock("reconcile", "a")
    assert await store.acquire_lock("reconcile", "b", ttl=0.05)
    # Expired locks can be taken (b's lasts 50 ms; until then a's attempts fail, changing nothing).
    assert await until(lambda: store.acquire_lock("reconcile", "a", ttl=30), timeout=5)


async def test_concurrent_writes_are_all_kept(store: Store) -> None:
    user = make_user("a@example.com")
    chat = make_chat(user, 1.0)
    await store.create_chat(chat)
    messages = [make_message(chat, 2.0 + i, f"m{i}") for i in range(40)]
    await asyncio.gather(*(store.create_message(m) for m in messages))
    assert [m.id for m in await store.list_messages(user.id, chat.id)] == [m.id for m in messages]
