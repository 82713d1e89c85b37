"""GET /api/search end to end: messages written through the real send path, indexed by the
real indexer, searched over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from gust.config import Settings
from gust.domain.ids import new_id
from gust.domain.models import Message
from gust.ports.search_store import Tombstone
from gust.services.indexer import Indexer
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.openapi_check import OpenAPIChecker


def open_registration() -> dict[str, Any]:
    """Several accounts without invites (when this Gust has registration modes)."""
    return {"registration": "open"} if "registration" in Settings.model_fields else {}


@pytest.fixture
async def search_app(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[RunningApp]:
    settings = make_settings(
        tmp_path / "data", models_file=upstream.models_file(tmp_path), **open_registration()
    )
    running = await start_app(settings)
    yield running
    await running.stop()


@pytest.fixture
async def client(search_app: RunningApp, http: aiohttp.ClientSession) -> Api:
    return Api(search_app.url, http, OpenAPIChecker(search_app.app.openapi))


def indexer(app: RunningApp) -> Indexer:
    return app.services.indexer


async def send(api: Api, upstream: FakeUpstream, text: str, answer: str, chat_id: str | None = None) -> str:
    """One exchange through POST /chat/message; returns the chat id."""
    upstream.script = Script(tokens=[answer])
    body: dict[str, Any] = {"message": text}
    if chat_id:
        body["chat_id"] = chat_id
    resp = await api.post("/chat/message", body)
    assert resp.status == 200, resp.text
    chat: str = resp.json["chat_id"]
    return chat


async def search(api: Api, query: str, **params: Any) -> dict[str, Any]:
    params["q"] = query
    resp = await api.get("/api/search?" + "&".join(f"{k}={quote(str(v))}"
                                                    for k, v in params.items()))
    assert resp.status == 200, resp.text
    result: dict[str, Any] = resp.json
    return result


async def test_each_user_gets_only_their_own_hits(
    search_app: RunningApp, client: Api, upstream: FakeUpstream
) -> None:
    alice = await client.register_and_login("alice@example.com")
    bob = await client.register_and_login("bob@example.com")
    alice_chat = await send(alice, upstream, "tornado warning in Kansas", "stay inside during a tornado")
    bob_chat = await send(bob, upstream, "tornado chasing tips", "never chase a tornado alone")
    await indexer(search_app).run_once()

    for api, own, other in ((alice, alice_chat, bob_chat), (bob, bob_chat, alice_chat)):
        result = await search(api, "tornado")
        assert {h["chat_id"] for h in result["hits"]} == {own}
        # The chat's title (named after the first message) and both messages.
        assert len(result["hits"]) == 3 and result["total_estimate"] == 3
        assert sorted(str(h["role"]) for h in result["hits"]) == ["None", "assistant", "user"]
        assert all("<mark>tornado</mark>" in h["snippet"].lower() for h in result["hits"])
        assert (await search(api, "tornado", chat_id=other))["hits"] == []
    assert [h["role"] for h in (await search(alice, "tornado", role="assistant"))["hits"]] == ["assistant"]
    assert (await search(alice, "Kansas"))["hits"][0]["chat_title"]


async def test_titles_diacritics_prefix_and_html(
    search_app: RunningApp, client: Api, upstream: FakeUpstream
) -> None:
    alice = await client.register_and_login("alice@example.com")
    chat_id = await send(alice, upstream, "Was ist ein Tornádo <script>?", "Ein Wirbelsturm & mehr")
    resp = await alice.patch(f"/api/chats/{chat_id}", {"title": "Wetter <Notizen>"})
    assert resp.status == 200
    await indexer(search_app).run_once()

    hit = (await search(alice, "tornado"))["hits"][0]
    assert hit["snippet"] == "Was ist ein <mark>Tornádo</mark> &lt;script&gt;?"
    assert hit["chat_title"] == "Wetter <Notizen>"  # JSON, not HTML: the client escapes titles
    assert (await search(alice, "torn"))["hits"][0]["message_id"] == hit["message_id"]
    title_hit = (await search(alice, "wetter"))["hits"][0]
    assert title_hit["message_id"] is None and title_hit["role"] is None
    assert title_hit["snippet"] == "<mark>Wetter</mark> &lt;Notizen&gt;"
    assert (await search(alice, "mehr &"))["hits"][0]["snippet"] == "Ein Wirbelsturm &amp; <mark>mehr</mark>"


async def test_deleting_a_chat_removes_its_hits(
    search_app: RunningApp, client: Api, upstream: FakeUpstream
) -> None:
    alice = await client.register_and_login("alice@example.com")
    doomed = await send(alice, upstream, "zeppelin facts", "the zeppelin floats")
    kept = await send(alice, upstream, "zeppelin history", "a zeppelin story")
    await indexer(search_app).run_once()
    assert {h["chat_id"] for h in (await search(alice, "zeppelin"))["hits"]} == {doomed, kept}

    assert (await alice.delete(f"/api/chats/{doomed}")).status == 204
    cycle = await indexer(search_app).run_once()
    assert cycle.tombstones == 1
    assert {h["chat_id"] for h in (await search(alice, "zeppelin"))["hits"]} == {kept}
    # Gone from the index itself, not only hidden: the chat and its two messages.
    me = (await alice.get("/api/auth/me")).json["id"]
    assert await search_app.services.search.index.count(me) == 3


async def test_streaming_messages_are_indexed_once_final(search_app: RunningApp, client: Api) -> None:
    alice = await client.register_and_login("alice@example.com")
    chat = (await alice.post("/api/chats", {"title": "Live"})).json
    me = (await alice.get("/api/auth/me")).json["id"]
    store = search_app.services.store
    message = Message(id=new_id(), chat_id=chat["id"], user_id=me, role="assistant",
                      content="partial quasar text", status="streaming", created_at=1.0, updated_at=1.0)
    await store.create_message(message)
    await indexer(search_app).run_once()
    assert (await search(alice, "quasar"))["hits"] == []
    final = {"content": "partial quasar text, cut", "status": "interrupted"}
    await store.update_message(me, message.id, final)
    await indexer(search_app).run_once()
    hits = (await search(alice, "quasar"))["hits"]
    assert [h["message_id"] for h in hits] == [message.id]
    assert "cut" in hits[0]["snippet"]


async def test_bad_queries_are_refused(client: Api) -> None:
    alice = await client.register_and_login("alice@example.com")
    for query in ["q=", "q=%20%20", "q=" + "x" * 201, "", "q=a&limit=0", "q=a&limit=51", "q=a&offset=-1",
                  "q=a&role=robot", "q=a&unknown=1"]:
        resp = await alice.get(f"/api/search?{query}")
        assert resp.status == 422, (query, resp.text)
        assert resp.json["error"]["code"] == "validation_error"
    assert (await alice.get("/api/search?q=" + "x" * 200)).status == 200
    assert (await client.get("/api/search?q=x")).status == 401


async def test_readiness_and_metrics_show_the_backlog(search_app: RunningApp, client: Api) -> None:
    alice = await client.register_and_login("alice@example.com")
    for title in ("one", "two", "three"):
        assert (await alice.post("/api/chats", {"title": title})).status == 201
    ready = (await client.get("/health/ready")).json
    assert ready["components"]["search"]["status"] == "ok"
    assert ready["components"]["search"]["pending"] == 3
    metrics = (await client.get("/metrics")).text
    assert "gust_search_pending 3.0" in metrics
    await indexer(search_app).run_once()
    ready = (await client.get("/health/ready")).json
    assert ready["components"]["search"] == {**ready["components"]["search"], "status": "ok", "pending": 0}
    assert "gust_search_pending 0.0" in (await client.get("/metrics")).text


async def test_a_message_tombstone_removes_that_message_only(
    search_app: RunningApp, client: Api, upstream: FakeUpstream
) -> None:
    alice = await client.register_and_login("alice@example.com")
    chat_id = await send(alice, upstream, "comet question", "comet answer")
    await indexer(search_app).run_once()
    me = (await alice.get("/api/auth/me")).json["id"]
    store = indexer(search_app).store
    question = [m for m in await store.list_messages(me, chat_id) if m.role == "user"][0]
    await store.add_search_tombstone(
        Tombstone(id=new_id(), kind="message", target_id=question.id, user_id=me, created_at=1.0)
    )
    assert (await indexer(search_app).run_once()).tombstones == 1
    assert [h["role"] for h in (await search(alice, "comet"))["hits"]] == [None, "assistant"]
    assert await store.list_search_tombstones(limit=5) == []
