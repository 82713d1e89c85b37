"""The Meilisearch adapter against a real Meilisearch server (TEST_MEILISEARCH_URL): its index
settings, upgrades of an index made by an older Gust, batching and task failures. What every
search index does is in tests/contract/test_search_contract.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from meilisearch_python_sdk.models.settings import MeilisearchSettings

from gust.adapters.search.meili import (
    FILTERABLE,
    SEARCHABLE,
    SORTABLE,
    MeilisearchIndex,
    separator_tokens,
)
from gust.domain.models import Chat, Message
from gust.ports.search import SearchIndexError
from gust.services.search import chat_document, message_document
from tests.support.env import free_port, require_env


def server() -> tuple[str, str | None]:
    return require_env("TEST_MEILISEARCH_URL", "a Meilisearch server"), os.environ.get("TEST_MEILISEARCH_KEY")


@pytest.fixture
async def uid() -> AsyncIterator[str]:
    """A fresh index name, deleted afterwards."""
    name = f"gust_adapter_{uuid.uuid4().hex[:12]}"
    yield name
    url, key = server()
    cleanup = MeilisearchIndex(url, key, index_uid=name)
    await cleanup.start()
    await cleanup.client.delete_index_if_exists(name)
    await cleanup.close()


def chat(user: str = "alice", title: str = "Storms") -> Chat:
    return Chat(id=f"c{uuid.uuid4().hex[:8]}", user_id=user, team_id="t1", title=title, model=None,
                created_at=1.0, updated_at=2.0)


def message(i: int, c: Chat) -> Message:
    return Message(id=f"m{i}{c.id}", chat_id=c.id, user_id=c.user_id, role="user", content=f"text {i}",
                   status="complete", created_at=3.0, updated_at=3.0, team_id=c.team_id)


async def settings_tasks(index: MeilisearchIndex) -> int:
    tasks = await index.client.get_tasks(index_ids=[index.index_uid], types="settingsUpdate")
    return tasks.total


async def test_start_creates_the_index_and_applies_settings_once(uid: str) -> None:
    url, key = server()
    first = MeilisearchIndex(url, key, index_uid=uid)
    await first.start()
    try:
        held = await first.index.get_settings()
        assert held.searchable_attributes == SEARCHABLE == ["title", "content"]  # order is ranking
        filterable = held.filterable_attributes or []
        names = [name for name in filterable if isinstance(name, str)]  # plain names, no rules
        assert len(names) == len(filterable) and sorted(names) == sorted(FILTERABLE)
        assert held.sortable_attributes == SORTABLE
        assert set(held.separator_tokens or []) == set(separator_tokens())
        assert {"<", ">", "$", "|", "\u00a0", "→", "🎉"} <= set(separator_tokens())
        assert await settings_tasks(first) == 1
        # A second start (another worker, a restart) finds the settings in place: no new task.
        again = MeilisearchIndex(url, key, index_uid=uid)
        await again.start()
        await again.close()
        assert await settings_tasks(first) == 1
    finally:
        await first.close()


async def test_an_index_of_an_older_version_gets_the_new_settings_and_is_reindexed(uid: str) -> None:
    url, key = server()
    old = MeilisearchIndex(url, key, index_uid=uid)
    await old.start()
    # The index as the previous Gust left it: no separator tokens, documents indexed under that.
    await old._wait(await old.index.update_settings(MeilisearchSettings(separator_tokens=[])))
    c = chat(title="Code <b>review</b>")
    await old.upsert([chat_document(c)])
    assert (await old.search("alice", "review", limit=5)).hits == []  # what users saw
    tasks_before = await settings_tasks(old)
    await old.close()

    upgraded = MeilisearchIndex(url, key, index_uid=uid)
    await upgraded.start()  # the next start of the new version
    try:
        assert [h.doc_id for h in (await upgraded.search("alice", "review", limit=5)).hits] == [f"c_{c.id}"]
        assert await settings_tasks(upgraded) == tasks_before + 1  # re-indexed once...
        again = MeilisearchIndex(url, key, index_uid=uid)
        await again.start()
        await again.close()
        assert await settings_tasks(upgraded) == tasks_before + 1  # ...and not at every start
    finally:
        await upgraded.close()


async def test_a_start_goes_on_while_the_index_reindexes_and_never_enqueues_it_twice(uid: str) -> None:
    url, key = server()
    old = MeilisearchIndex(url, key, index_uid=uid)
    await old.start()
    await old._wait(await old.index.update_settings(MeilisearchSettings(separator_tokens=[])))
    c = chat(title="Code <b>review</b>")
    await old.upsert([chat_document(c)] + [message_document(message(i, c)) for i in range(3000)])
    tasks_before = await settings_tasks(old)
    await old.close()

    hurried = MeilisearchIndex(url, key, index_uid=uid, settings_wait=0.001)
    await hurried.start()  # does not wait for the re-indexing, and does not fail
    other_worker = MeilisearchIndex(url, key, index_uid=uid)
    await other_worker.start()  # finds the update running (or done): waits for it
    try:
        assert await settings_tasks(other_worker) == tasks_before + 1
        assert [h.doc_id for h in (await other_worker.search("alice", "review", limit=5)).hits] == [
            f"c_{c.id}"]
    finally:
        await hurried.close()
        await other_worker.close()


async def test_upsert_sends_batches_and_waits_for_every_task(uid: str) -> None:
    url, key = server()
    index = MeilisearchIndex(url, key, index_uid=uid, batch_size=2)
    await index.start()
    try:
        c = chat()
        await index.upsert([chat_document(c)] + [message_document(message(i, c)) for i in range(4)])
        # Every batch's task had succeeded when upsert returned: all five are searchable now.
        assert await index.count("alice") == 5
        adds = await index.client.get_tasks(index_ids=[uid], types="documentAdditionOrUpdate")
        assert adds.total == 3  # 2 + 2 + 1
        assert all(t.status == "succeeded" for t in adds.results)
    finally:
        await index.close()


async def test_a_failed_task_is_raised_not_swallowed(uid: str) -> None:
    url, key = server()
    index = MeilisearchIndex(url, key, index_uid=uid, batch_size=1)
    await index.start()
    try:
        good = chat_document(chat())
        bad = replace(good, id="not a valid id!")
        with pytest.raises(SearchIndexError, match="invalid_document_id"):
            await index.upsert([good, bad])  # the second of two batches fails
    finally:
        await index.close()


async def test_user_ids_are_quoted_in_filters(uid: str) -> None:
    url, key = server()
    index = MeilisearchIndex(url, key, index_uid=uid)
    await index.start()
    try:
        odd, plain = chat('al"ice\\', "Storms ahead"), chat("alice", "Storms behind")
        await index.upsert([chat_document(odd), chat_document(plain)])
        assert [h.chat_id for h in (await index.search('al"ice\\', "storms", limit=5)).hits] == [odd.id]
        assert [h.chat_id for h in (await index.search("alice", "storms", limit=5)).hits] == [plain.id]
        assert await index.count('al"ice\\') == 1
        await index.delete_chat_documents('al"ice\\', [odd.id, plain.id])  # only the user's own
        assert await index.count() == 1
    finally:
        await index.close()


async def test_an_unreachable_server_is_a_search_error() -> None:
    index = MeilisearchIndex(f"http://127.0.0.1:{free_port()}", None, timeout=2)
    with pytest.raises(SearchIndexError):
        await index.start()
    with pytest.raises(SearchIndexError):
        await index.ping()
    with pytest.raises(SearchIndexError):
        await index.search("alice", "x", limit=5)
    await index.close()
