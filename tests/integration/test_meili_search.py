"""Gust with MEILISEARCH_HOST on a real Meilisearch: search over HTTP end to end, and search
across a Meilisearch crash (503 while it is down, nothing left un-indexed after it returns)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gust.adapters.search.meili import MeilisearchIndex
from tests.api.test_search_api import open_registration, search, send
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.env import require_env
from tests.support.fake_upstream import FakeUpstream
from tests.support.meili_server import MeiliServer
from tests.support.openapi_check import OpenAPIChecker
from tests.support.wait import until


def meili_settings(tmp_path: Path, upstream: FakeUpstream, url: str, key: str | None, index: str) -> Any:
    return make_settings(
        tmp_path / "data",
        models_file=upstream.models_file(tmp_path),
        meilisearch_host=url,
        meilisearch_api_key=key,
        meilisearch_index=index,
        meilisearch_timeout=2.0,
        search_index_interval=0.05,
        search_backoff_max=0.2,
        **open_registration(),
    )


async def hits(api: Api, query: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await search(api, query))["hits"]
    return found


async def index_count(app: RunningApp, user_id: str) -> int:
    return await app.services.indexer.index.count(user_id)


async def store_count(app: RunningApp, user_id: str) -> int:
    """Every chat and message of the user in the store: what the index must hold."""
    store = app.services.store
    chats = await store.list_chats(user_id, limit=1000)
    total = len(chats)
    for chat in chats:
        total += len(await store.list_messages(user_id, chat.id))
    return total


@pytest.fixture
async def shared_meili_app(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[RunningApp]:
    url = require_env("TEST_MEILISEARCH_URL", "a Meilisearch server")
    key = os.environ.get("TEST_MEILISEARCH_KEY")
    index = f"gust_e2e_{uuid.uuid4().hex[:12]}"
    running = await start_app(meili_settings(tmp_path, upstream, url, key, index))
    yield running
    await running.stop()
    cleanup = MeilisearchIndex(url, key, index_uid=index)
    await cleanup.start()
    await cleanup.client.delete_index_if_exists(index)
    await cleanup.close()


async def test_search_over_http_on_meilisearch(
    shared_meili_app: RunningApp, http: aiohttp.ClientSession, upstream: FakeUpstream
) -> None:
    app = shared_meili_app
    anonymous = Api(app.url, http, OpenAPIChecker(app.app.openapi))
    ready = (await anonymous.get("/health/ready")).json["components"]["search"]
    assert (ready["backend"], ready["status"]) == ("meilisearch", "ok")
    alice = await anonymous.register_and_login("alice@example.com")
    bob = await anonymous.register_and_login("bob@example.com")
    chat_id = await send(alice, upstream, "please check the tornado parser", "the parser looks→fine")
    assert (await alice.patch(f"/api/chats/{chat_id}", {"title": "Code <b>review</b>"})).status == 200
    await send(bob, upstream, "my own tornado question", "an answer for bob")

    assert await until(lambda: _found(alice, "review"), timeout=30)
    [title_hit] = await hits(alice, "review")
    assert (title_hit["chat_id"], title_hit["message_id"], title_hit["chat_title"]) == (
        chat_id, None, "Code <b>review</b>")
    assert title_hit["snippet"] == "Code &lt;b&gt;<mark>review</mark>&lt;/b&gt;"
    assert await until(lambda: _found(alice, "fine"), timeout=30)  # the answer, split at the arrow
    [answer] = await hits(alice, "fine")
    assert answer["role"] == "assistant" and answer["chat_id"] == chat_id
    assert await until(lambda: _found(bob, "tornado"), timeout=30)
    assert {h["chat_id"] for h in await hits(alice, "tornado")} == {chat_id}  # not bob's
    assert chat_id not in {h["chat_id"] for h in await hits(bob, "tornado")}

    assert (await alice.delete(f"/api/chats/{chat_id}")).status in (200, 204)
    assert await until(lambda: _gone(alice, "tornado"), timeout=30)
    me = (await alice.get("/api/auth/me")).json["id"]
    assert await until(lambda: _index_empty(app, me), timeout=30)  # its documents leave the index


async def _index_empty(app: RunningApp, user_id: str) -> bool:
    return await index_count(app, user_id) == 0


async def _found(api: Api, query: str) -> bool:
    return bool(await hits(api, query))


async def _gone(api: Api, query: str) -> bool:
    return not await hits(api, query)


@pytest.fixture
async def own_meili(tmp_path: Path) -> AsyncIterator[MeiliServer]:
    server = MeiliServer.from_env(tmp_path / "meili")
    await server.start()
    yield server
    server.kill()


async def test_meilisearch_killed_then_restarted(
    own_meili: MeiliServer, upstream: FakeUpstream, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    app = await start_app(meili_settings(tmp_path, upstream, own_meili.url, own_meili.key, "gust"))
    try:
        anonymous = Api(app.url, http, OpenAPIChecker(app.app.openapi))
        alice = await anonymous.register_and_login("alice@example.com")
        me = (await alice.get("/api/auth/me")).json["id"]
        await send(alice, upstream, "before the outage: glaciers", "glaciers move slowly")
        assert await until(lambda: _found(alice, "glaciers"), timeout=30)

        own_meili.kill()
        resp = await alice.get("/api/search?q=glaciers")
        assert resp.status == 503
        assert resp.json["error"]["code"] == "search_unavailable"
        ready = await anonymous.get("/health/ready")
        assert ready.status == 200  # search is not required: the process stays ready...
        assert ready.json["status"] == "degraded"  # ...and says what is missing
        component = ready.json["components"]["search"]
        assert (component["status"], component["backend"]) == ("down", "meilisearch")
        # Chats go on while search is down; what they write waits to be indexed.
        during = [await send(alice, upstream, f"during the outage: volcano {i}", f"lava flows {i}")
                  for i in range(3)]
        assert all(c for c in during)
        assert await app.services.indexer.store.count_search_pending() >= 9  # 3 chats, 6 messages

        await own_meili.start()  # same port, same data
        assert await until(lambda: _found(alice, "volcano"), timeout=60)
        indexer_store = app.services.indexer.store
        assert await until(lambda: _zero(indexer_store.count_search_pending()), timeout=60)
        assert await index_count(app, me) == await store_count(app, me)  # nothing un-indexed
        assert {h["chat_id"] for h in await hits(alice, "volcano")} == set(during)
        assert len(await hits(alice, "lava")) == 3
        assert [h["chat_id"] for h in await hits(alice, "glaciers")] != []  # kept across the crash
        assert await until(lambda: _ready_ok(anonymous), timeout=30)
    finally:
        await app.stop()


async def _zero(count: Any) -> bool:
    return bool(await count == 0)


async def _ready_ok(api: Api) -> bool:
    ready = await api.get("/health/ready")
    return bool(ready.status == 200 and ready.json["components"]["search"]["status"] == "ok")
