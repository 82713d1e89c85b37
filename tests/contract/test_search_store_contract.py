"""The SearchStore contract (index state kept by the store): runs on SQLite and on MongoDB."""

from __future__ import annotations

import pytest

from gust.domain.ids import new_id
from gust.ports.search_store import SearchStore, Tombstone
from tests.contract.test_store_contract import make_chat, make_message, make_user
from tests.support.backends import StoreAdapter


@pytest.fixture
def search_store(store: StoreAdapter) -> SearchStore:
    return store


async def test_new_and_updated_records_are_pending_until_marked(search_store: SearchStore) -> None:
    s = search_store
    user = make_user("a@example.com")
    chat = make_chat(user, 1.0)
    await s.create_chat(chat)
    done = make_message(chat, 2.0, "done")
    streaming = make_message(chat, 3.0, "", status="streaming")
    await s.create_message(done)
    await s.create_message(streaming)
    assert [c.id for c in await s.list_pending_chats(limit=10)] == [chat.id]
    # Streaming messages wait until final.
    assert [m.id for m in await s.list_pending_messages(limit=10)] == [done.id]
    assert await s.count_search_pending() == 2

    assert await s.mark_chats_indexed([chat]) == 1
    assert await s.mark_messages_indexed([done]) == 1
    assert await s.list_pending_chats(limit=10) == []
    assert await s.list_pending_messages(limit=10) == []
    assert await s.count_search_pending() == 0
    got = await s.get_message(user.id, done.id)
    assert got is not None and got.index_state == "indexed" and got.content == "done"

    await s.update_message(user.id, streaming.id, {"content": "final text", "status": "complete"})
    assert [m.id for m in await s.list_pending_messages(limit=10)] == [streaming.id]
    await s.update_chat(user.id, chat.id, {"title": "Renamed", "updated_at": 5.0})
    assert [c.id for c in await s.list_pending_chats(limit=10)] == [chat.id]


async def test_marking_never_hides_a_newer_version(search_store: SearchStore) -> None:
    s = search_store
    user = make_user("a@example.com")
    chat = make_chat(user, 1.0, title="Old")
    await s.create_chat(chat)
    message = make_message(chat, 2.0, "first draft")
    await s.create_message(message)
    shipped_chat = (await s.list_pending_chats(limit=1))[0]
    shipped_message = (await s.list_pending_messages(limit=1))[0]
    # Changed while the indexer was shipping the versions it read.
    await s.update_chat(user.id, chat.id, {"title": "New", "updated_at": 3.0})
    await s.update_message(user.id, message.id, {"content": "second draft"})
    assert await s.mark_chats_indexed([shipped_chat]) == 0
    assert await s.mark_messages_indexed([shipped_message]) == 0
    assert [c.title for c in await s.list_pending_chats(limit=10)] == ["New"]
    assert [m.content for m in await s.list_pending_messages(limit=10)] == ["second draft"]
    # A change of a field the index does not hold leaves the shipped version current.
    current = (await s.list_pending_messages(limit=1))[0]
    await s.update_message(user.id, message.id, {"usage": {"prompt_tokens": 1, "completion_tokens": 2}})
    assert await s.mark_messages_indexed([current]) == 1


async def test_deleting_a_chat_leaves_a_tombstone(search_store: SearchStore) -> None:
    s = search_store
    alice, bob = make_user("a@example.com"), make_user("b@example.com")
    chat = make_chat(alice, 1.0)
    await s.create_chat(chat)
    await s.create_message(make_message(chat, 2.0))
    assert await s.delete_chat(bob.id, chat.id) is False  # not bob's: no tombstone either
    assert await s.list_search_tombstones(limit=10) == []
    assert await s.delete_chat(alice.id, chat.id) is True
    tombstones = await s.list_search_tombstones(limit=10)
    assert [(t.kind, t.target_id, t.user_id) for t in tombstones] == [("chat", chat.id, alice.id)]
    assert await s.count_search_pending() == 0  # its pending messages went with it
    extra = Tombstone(id=new_id(), kind="message", target_id="m1", user_id=alice.id, created_at=9.0)
    await s.add_search_tombstone(extra)
    assert [t.id for t in await s.list_search_tombstones(limit=10)] == [tombstones[0].id, extra.id]
    await s.clear_search_tombstones([tombstones[0].id])
    assert await s.list_search_tombstones(limit=10) == [extra]


async def test_cursor_walks_visit_every_record_once(search_store: SearchStore) -> None:
    s = search_store
    alice, bob = make_user("a@example.com"), make_user("b@example.com")
    chats = [make_chat(u, float(i)) for i, u in enumerate([alice, bob, alice, bob, alice])]
    for c in chats:
        await s.create_chat(c)
    messages = [make_message(c, 1.0 + i) for i, c in enumerate(chats * 2)]
    for m in messages:
        await s.create_message(m)
    seen_chats, after = [], None
    while page := await s.walk_chats(after=after, limit=2):
        seen_chats += [c.id for c in page]
        after = page[-1].id
    assert seen_chats == sorted(c.id for c in chats)
    seen_messages, after = [], None
    while page_m := await s.walk_messages(after=after, limit=3):
        seen_messages += [m.id for m in page_m]
        after = page_m[-1].id
    assert seen_messages == sorted(m.id for m in messages)


async def test_existence_and_titles(search_store: SearchStore) -> None:
    s = search_store
    alice, bob = make_user("a@example.com"), make_user("b@example.com")
    mine, theirs = make_chat(alice, 1.0, title="Mine"), make_chat(bob, 1.0, title="Theirs")
    await s.create_chat(mine)
    await s.create_chat(theirs)
    message = make_message(mine, 2.0)
    await s.create_message(message)
    assert await s.existing_chat_ids({mine.id, theirs.id, "gone"}) == {mine.id, theirs.id}
    assert await s.existing_message_ids({message.id, "gone"}) == {message.id}
    assert await s.existing_message_ids(set()) == set()
    assert await s.chat_titles(alice.id, {mine.id, theirs.id, "gone"}) == {mine.id: "Mine"}
