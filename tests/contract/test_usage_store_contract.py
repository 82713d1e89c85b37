"""The UsageStore contract (sums of stored answer usage): runs on SQLite and on MongoDB."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gust.adapters.store.mongo import MongoStore
from gust.adapters.store.sqlite import SQLiteStore
from gust.domain.ids import new_id
from gust.domain.models import Chat, Message
from gust.ports.store import Store
from gust.ports.usage_store import LEGACY_API_USAGE_CHAT, UsageRecord, UsageRow, UsageStore
from tests.contract.test_store_contract import make_chat, make_message, make_user
from tests.support.backends import StoreAdapter


@pytest.fixture
def usage_store(store: StoreAdapter) -> UsageStore:
    return store


async def answer(
    store: UsageStore, chat: Chat, created_at: float, model: str | None, usage: dict[str, Any] | None
) -> Message:
    message = make_message(chat, created_at, "answer")
    message.role = "assistant"
    message.model = model
    message.usage = usage
    await store.create_message(message)
    return message


def by_key(rows: list[UsageRow]) -> dict[tuple[str, str | None], UsageRow]:
    return {(r.user_id, r.model): r for r in rows}


async def test_sums_per_user_and_model_within_the_team(usage_store: UsageStore) -> None:
    s = usage_store
    ann, bob = make_user("ann@example.com"), make_user("bob@example.com")
    outsider = make_user("eve@example.com", team_id="t2")
    ann_chat, bob_chat, eve_chat = make_chat(ann, 1.0), make_chat(bob, 1.0), make_chat(outsider, 1.0)
    for chat in (ann_chat, bob_chat, eve_chat):
        await s.create_chat(chat)
    await s.create_message(make_message(ann_chat, 5.0, "question"))  # no usage: not counted
    await answer(s, ann_chat, 10.0, "fast", {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.25})
    await answer(s, ann_chat, 20.0, "fast", {"prompt_tokens": 7, "completion_tokens": 3, "estimated": True})
    await answer(s, ann_chat, 30.0, "smart", {"prompt_tokens": 100, "completion_tokens": 50, "cost": 1.5})
    await answer(s, ann_chat, 35.0, "smart", None)  # failed before any text
    await answer(s, bob_chat, 15.0, "fast", {"prompt_tokens": 1, "completion_tokens": 2, "cost": 0.125})
    await answer(s, eve_chat, 15.0, "fast", {"prompt_tokens": 999, "completion_tokens": 999, "cost": 9.0})

    mine = by_key(await s.usage_rows(team_id="t1", user_id=ann.id, since=None, until=None))
    assert set(mine) == {(ann.id, "fast"), (ann.id, "smart")}
    fast = mine[(ann.id, "fast")]
    assert (fast.messages, fast.prompt_tokens, fast.completion_tokens) == (2, 17, 8)
    assert fast.cost == pytest.approx(0.25) and fast.estimated_messages == 1
    smart = mine[(ann.id, "smart")]
    assert (smart.messages, smart.prompt_tokens, smart.completion_tokens) == (1, 100, 50)
    assert smart.cost == pytest.approx(1.5) and smart.estimated_messages == 0

    team = by_key(await s.usage_rows(team_id="t1", user_id=None, since=None, until=None))
    assert set(team) == {(ann.id, "fast"), (ann.id, "smart"), (bob.id, "fast")}  # never team t2
    assert team[(bob.id, "fast")].cost == pytest.approx(0.125)

    # A user id outside the team gives nothing, even with that user's own rows in the store.
    assert await s.usage_rows(team_id="t1", user_id=outsider.id, since=None, until=None) == []


async def test_time_range_is_half_open(usage_store: UsageStore) -> None:
    s = usage_store
    ann = make_user("ann@example.com")
    chat = make_chat(ann, 1.0)
    await s.create_chat(chat)
    for t in (10.0, 20.0, 30.0):
        await answer(s, chat, t, "fast", {"prompt_tokens": int(t), "completion_tokens": 1})

    async def prompt_sum(since: float | None, until: float | None) -> int:
        rows = await s.usage_rows(team_id="t1", user_id=ann.id, since=since, until=until)
        return sum(r.prompt_tokens for r in rows)

    assert await prompt_sum(10.0, 30.0) == 30  # 10 and 20; 30 is the excluded end
    assert await prompt_sum(20.0, None) == 50
    assert await prompt_sum(None, 20.0) == 10
    assert await prompt_sum(31.0, None) == 0


async def test_usage_written_by_update_counts(usage_store: UsageStore) -> None:
    s = usage_store
    ann = make_user("ann@example.com")
    chat = make_chat(ann, 1.0)
    await s.create_chat(chat)
    message = await answer(s, chat, 10.0, "fast", None)
    assert await s.usage_rows(team_id="t1", user_id=ann.id, since=None, until=None) == []
    await s.update_message(ann.id, message.id, {"usage": {"prompt_tokens": 4, "completion_tokens": 6}})
    rows = await s.usage_rows(team_id="t1", user_id=ann.id, since=None, until=None)
    assert [(r.model, r.messages, r.prompt_tokens, r.completion_tokens, r.cost) for r in rows] == [
        ("fast", 1, 4, 6, 0.0)
    ]


async def test_imported_usage_is_never_counted(usage_store: UsageStore) -> None:
    """Usage from an import file is kept on its answer for display, never summed (issue 18)."""
    s = usage_store
    ann = make_user("ann@example.com")
    chat = make_chat(ann, 1.0)
    await s.create_chat(chat)
    await answer(s, chat, 10.0, "fast", {"prompt_tokens": 4, "completion_tokens": 6, "cost": 0.5})
    for usage in ({"prompt_tokens": 10**9, "completion_tokens": 10**9, "cost": 1e6, "imported": True},
                  {"prompt_tokens": 3, "completion_tokens": 3, "imported": True}):
        await answer(s, chat, 20.0, "fast", usage)
    await answer(s, chat, 30.0, "other", {"prompt_tokens": 5, "completion_tokens": 5, "imported": True})
    for user_id in (ann.id, None):
        rows = await s.usage_rows(team_id="t1", user_id=user_id, since=None, until=None)
        assert [(r.model, r.messages, r.prompt_tokens, r.completion_tokens, r.cost) for r in rows] == [
            ("fast", 1, 4, 6, 0.5)
        ]


def record(
    user_id: str, created_at: float, model: str, usage: dict[str, Any], team_id: str = "t1"
) -> UsageRecord:
    return UsageRecord(
        id=new_id(), user_id=user_id, team_id=team_id, model=model, usage=usage, created_at=created_at
    )


async def test_usage_records_count_with_answers(usage_store: UsageStore) -> None:
    """API usage (a /v1 completion not saved as a chat) is a record of its own, summed with
    the answers' usage under the same filters."""
    s = usage_store
    ann, bob = make_user("ann@example.com"), make_user("bob@example.com")
    chat = make_chat(ann, 1.0)
    await s.create_chat(chat)
    await answer(s, chat, 10.0, "fast", {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.25})
    await s.add_usage_record(
        record(ann.id, 12.0, "fast", {"prompt_tokens": 3, "completion_tokens": 2, "cost": 0.5})
    )
    await s.add_usage_record(
        record(ann.id, 40.0, "api-only", {"prompt_tokens": 1, "completion_tokens": 1, "estimated": True})
    )
    await s.add_usage_record(record(bob.id, 12.0, "fast", {"prompt_tokens": 100, "completion_tokens": 100}))
    await s.add_usage_record(
        record("eve", 12.0, "fast", {"prompt_tokens": 999, "completion_tokens": 9}, team_id="t2")
    )

    mine = by_key(await s.usage_rows(team_id="t1", user_id=ann.id, since=None, until=None))
    fast = mine[(ann.id, "fast")]
    assert (fast.messages, fast.prompt_tokens, fast.completion_tokens) == (2, 13, 7)
    assert fast.cost == pytest.approx(0.75)
    api_only = mine[(ann.id, "api-only")]
    assert (api_only.messages, api_only.estimated_messages) == (1, 1)
    early = by_key(await s.usage_rows(team_id="t1", user_id=ann.id, since=None, until=20.0))
    assert set(early) == {(ann.id, "fast")}
    team = by_key(await s.usage_rows(team_id="t1", user_id=None, since=None, until=None))
    assert set(team) == {(ann.id, "fast"), (ann.id, "api-only"), (bob.id, "fast")}  # never team t2
    # A record is no message: no chat or listing ever shows it.
    assert await s.list_messages(ann.id, LEGACY_API_USAGE_CHAT) == []


async def test_legacy_api_usage_messages_become_records(store: Store, tmp_path: Path) -> None:
    """Earlier versions stored /v1 usage as content-free messages of a phantom chat: the
    store moves them into usage records when it starts, and the sums stay the same."""
    ann = make_user("ann@example.com")
    phantom = Chat(
        id=LEGACY_API_USAGE_CHAT,
        user_id=ann.id,
        team_id="t1",
        title="",
        model=None,
        created_at=1.0,
        updated_at=1.0,
    )
    legacy = make_message(phantom, 10.0, "")
    legacy.role, legacy.model = "assistant", "fast"
    legacy.usage = {"prompt_tokens": 4, "completion_tokens": 6, "cost": 0.5}
    await store.create_message(legacy)
    if isinstance(store, SQLiteStore):
        # The database as an earlier version left it: before the usage-records migration.
        path = store.path
        await store.close()
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TABLE usage_records")
            conn.execute("DELETE FROM schema_migrations WHERE name = '0310_usage_records'")
        store = SQLiteStore(path)
        await store.start()
    else:
        assert isinstance(store, MongoStore)
        await store.ensure_indexes()
    try:
        s = store
        assert await s.list_messages(ann.id, LEGACY_API_USAGE_CHAT) == []
        rows = await s.usage_rows(team_id="t1", user_id=ann.id, since=None, until=None)
        assert [(r.model, r.messages, r.prompt_tokens, r.completion_tokens) for r in rows] == [
            ("fast", 1, 4, 6)
        ]
        assert rows[0].cost == pytest.approx(0.5)
    finally:
        if isinstance(store, SQLiteStore):
            await store.close()
