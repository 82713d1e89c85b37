"""Search under real faults: a locked index file, and drift repaired by `gust reindex`."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gust.ports.search import SearchIndexError
from gust.ports.search_store import SearchStore
from gust.services.indexer import Indexer
from gust.services.reconcile import RECONCILE_LOCK
from tests.api.test_search_api import open_registration, search, send
from tests.support.app_server import ROOT, RunningApp, make_settings, start_app, subprocess_env
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream
from tests.support.openapi_check import OpenAPIChecker
from tests.support.wait import until


@pytest.fixture
async def search_app(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[RunningApp]:
    settings = make_settings(
        tmp_path / "data",
        models_file=upstream.models_file(tmp_path),
        search_lock_timeout=0.2,  # a locked file fails a write quickly
        search_index_interval=0.05,
        search_backoff_max=0.2,
        **open_registration(),
    )
    running = await start_app(settings)
    yield running
    await running.stop()


@pytest.fixture
async def client(search_app: RunningApp, http: aiohttp.ClientSession) -> Api:
    return Api(search_app.url, http, OpenAPIChecker(search_app.app.openapi))


def parts(app: RunningApp) -> tuple[Indexer, SearchStore]:
    indexer = app.services.indexer
    assert indexer is not None
    return indexer, indexer.store


async def drain(indexer: Indexer) -> None:
    """Run indexer cycles until the store has nothing pending (bounded number of cycles)."""
    for _ in range(50):
        await indexer.run_once()
        if await indexer.store.count_search_pending() == 0:
            return
    raise AssertionError("the indexer did not catch up")


async def test_locked_search_file_degrades_search_only_and_loses_nothing(
    search_app: RunningApp, client: Api, upstream: FakeUpstream
) -> None:
    indexer, store = parts(search_app)
    alice = await client.register_and_login("alice@example.com")
    await send(alice, upstream, "baseline question", "baseline answer")
    await drain(indexer)

    locker = sqlite3.connect(search_app.settings.search_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the search file
    try:
        chat_ids = [await send(alice, upstream, f"locked question {i}", f"answer {i}") for i in range(5)]
        assert (await alice.get(f"/api/chats/{chat_ids[0]}")).status == 200  # chats keep working
        assert len((await alice.get("/api/chats")).json["items"]) == 6
        with pytest.raises(SearchIndexError):
            await indexer.run_once()
        backlog = await store.count_search_pending()
        assert backlog == 5 + 10  # five new chats, two messages each

        ready = await client.get("/health/ready")
        assert ready.status == 200  # search is not required: degraded, not down
        component = ready.json["components"]["search"]
        assert ready.json["status"] == "degraded"
        assert component["status"] == "degraded" and component["pending"] == backlog
        assert "locked" in component["detail"]
        # Readers are not blocked by the writer's lock: search still answers (stale).
        assert len((await search(alice, "baseline"))["hits"]) == 3  # the title and two messages
    finally:
        locker.execute("ROLLBACK")
        locker.close()

    await drain(indexer)
    me = (await alice.get("/api/auth/me")).json["id"]
    expected = 6 + 12  # every chat and every message of the store, none lost
    assert await indexer.index.count(me) == expected
    hits = (await search(alice, "locked", limit=50))["hits"]
    assert len(hits) == 10 and {h["chat_id"] for h in hits} == set(chat_ids)  # 5 titles, 5 questions
    ready = await client.get("/health/ready")
    assert ready.json["components"]["search"]["status"] == "ok"
    assert ready.json["components"]["search"]["pending"] == 0


async def reindex(data_dir: Path, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    """`python -m gust reindex` in a child process; (exit code, JSON report, stderr)."""
    env = subprocess_env({"DATA_DIR": str(data_dir), "SEARCH_BATCH_SIZE": "2", "LOG_LEVEL": "WARNING"})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gust", "reindex", *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    lines = out.decode().strip().splitlines()
    report = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
    assert proc.returncode is not None
    return proc.returncode, report, err.decode()


async def test_reindex_repairs_drift_both_ways(
    search_app: RunningApp, client: Api, upstream: FakeUpstream
) -> None:
    indexer, store = parts(search_app)
    alice = await client.register_and_login("alice@example.com")
    me = (await alice.get("/api/auth/me")).json["id"]
    first = await send(alice, upstream, "ask about walruses", "walruses have tusks")
    second = await send(alice, upstream, "ask about penguins", "penguins cannot fly")
    third = await send(alice, upstream, "ask about narwhals", "narwhals live in the arctic")
    resp = await alice.patch(f"/api/chats/{second}", {"title": "Antarctic birds"})
    assert resp.status == 200
    await drain(indexer)
    assert await indexer.index.count(me) == 9
    first_answer = [m for m in await store.list_messages(me, first) if m.role == "assistant"][0]
    third_messages = await store.list_messages(me, third)
    third_question = [m for m in third_messages if m.role == "user"][0]
    third_answer = [m for m in third_messages if m.role == "assistant"][0]

    # Behind Gust's back: documents vanish from the index...
    data_dir = search_app.settings.data_dir
    with sqlite3.connect(search_app.settings.search_path) as index_db:
        for doc_id in (f"m_{first_answer.id}", f"c_{second}"):
            index_db.execute("DELETE FROM search_fts_0 WHERE rowid = "  # the first users' shard
                             "(SELECT rowid FROM search_docs WHERE doc_id = ?)", (doc_id,))
            index_db.execute("DELETE FROM search_docs WHERE doc_id = ?", (doc_id,))
    # ...and store rows change or disappear without being marked pending.
    with sqlite3.connect(search_app.settings.sqlite_path) as store_db:
        store_db.execute("UPDATE messages SET data = json_set(data, '$.content', ?) WHERE id = ?",
                         ("narwhals play the xylophone", third_answer.id))
        store_db.execute("DELETE FROM messages WHERE id = ?", (third_question.id,))
    assert (await search(alice, "tusks"))["hits"] == []
    assert (await search(alice, "antarctic"))["hits"] == []
    assert (await search(alice, "xylophone"))["hits"] == []
    assert await store.count_search_pending() == 0  # the indexer alone would never notice

    code, report, err = await reindex(data_dir)
    assert code == 0, err
    assert report is not None
    assert report["sent"] == 3 and report["orphans_deleted"] == 1
    assert report["chats"] == 3 and report["messages"] == 5

    assert [h["chat_id"] for h in (await search(alice, "tusks"))["hits"]] == [first]
    antarctic = (await search(alice, "antarctic"))["hits"]
    assert [(h["chat_id"], h["message_id"]) for h in antarctic] == [(second, None)]
    assert [h["message_id"] for h in (await search(alice, "xylophone"))["hits"]] == [third_answer.id]
    # The deleted question's document is gone; the chat's title still matches.
    assert [h["message_id"] for h in (await search(alice, "ask narwhals"))["hits"]] == [None]
    assert await indexer.index.count(me) == 8

    code, report, err = await reindex(data_dir, "--full")
    assert code == 0, err
    assert report is not None and report["sent"] == 8 and report["orphans_deleted"] == 0

    # One reconcile at a time: while another process holds the lock, reindex gives up.
    assert await store.acquire_lock(RECONCILE_LOCK, "another-process", 60)
    code, report, err = await reindex(data_dir, "--wait", "0")
    assert code == 3 and report is None and "another process" in err
    await store.release_lock(RECONCILE_LOCK, "another-process")


async def test_two_indexers_share_the_work_without_loss(search_app: RunningApp, client: Api) -> None:
    indexer, store = parts(search_app)
    await indexer.stop()  # only the two below write to the index
    other = Indexer(store, indexer.index, batch_size=3, max_batches_per_cycle=2)
    mine = Indexer(store, indexer.index, batch_size=3, max_batches_per_cycle=2)
    alice = await client.register_and_login("alice@example.com")
    for i in range(20):
        assert (await alice.post("/api/chats", {"title": f"parallel chat {i}"})).status == 201
    for _ in range(10):
        await asyncio.gather(mine.run_once(), other.run_once())
    assert await store.count_search_pending() == 0
    me = (await alice.get("/api/auth/me")).json["id"]
    assert await indexer.index.count(me) == 20
    assert (await search(alice, "parallel", limit=50))["total_estimate"] == 20


async def test_start_up_reconcile_repairs_drift_in_the_background(
    upstream: FakeUpstream, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "restart", models_file=upstream.models_file(tmp_path))
    first = await start_app(settings)
    try:
        anonymous = Api(first.url, http, OpenAPIChecker(first.app.openapi))
        alice = await anonymous.register_and_login("a@example.com")
        chat_id = await send(alice, upstream, "question about geysers", "geysers erupt")
        await drain(parts(first)[0])
    finally:
        await first.stop()
    with sqlite3.connect(settings.sqlite_path) as store_db:  # drift while Gust is down
        store_db.execute("UPDATE messages SET data = json_set(data, '$.content', ?) WHERE chat_id = ? "
                         "AND json_extract(data, '$.role') = 'assistant'", ("geysers and fumaroles", chat_id))

    restarted = await start_app(settings)  # same DATA_DIR
    try:
        api = Api(restarted.url, http, OpenAPIChecker(restarted.app.openapi), alice.token)

        async def repaired() -> bool:  # the background pass repairs it
            return bool((await search(api, "fumaroles"))["hits"])

        assert await until(repaired, timeout=60, interval=0.05), "the start-up reconcile left the drift"
        assert (await search(api, "fumaroles"))["hits"][0]["chat_id"] == chat_id
    finally:
        await restarted.stop()
