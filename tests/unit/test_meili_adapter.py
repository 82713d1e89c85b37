"""What the Meilisearch adapter sends, checked against a real local HTTP server that records
every request and answers Meilisearch-shaped JSON (no Meilisearch server runs here)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from gust.adapters.search.meili import FILTERABLE, SEARCHABLE, SORTABLE, MeilisearchIndex
from gust.domain.models import Chat, Message
from gust.ports.search import MARK_END, MARK_START, DocRef, SearchIndexError
from gust.services.search import chat_document, message_document
from tests.support.env import free_port

ENQUEUED = "2025-01-01T00:00:00Z"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeMeili:
    """Just enough of Meilisearch's HTTP API for the adapter, with scripted task outcomes."""

    requests: list[Seen] = field(default_factory=list)
    index_exists: bool = False
    settings: dict[str, Any] = field(default_factory=lambda: {
        "searchableAttributes": ["*"], "filterableAttributes": [], "sortableAttributes": []})
    documents: list[dict[str, Any]] = field(default_factory=list)
    fail_tasks: set[int] = field(default_factory=set)
    search_answer: dict[str, Any] = field(default_factory=dict)
    next_task: int = 0
    port: int = 0
    runner: web.AppRunner | None = None

    def seen(self, method: str, suffix: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    def task(self, kind: str) -> web.Response:
        self.next_task += 1
        return web.json_response({"taskUid": self.next_task, "indexUid": "gust", "status": "enqueued",
                                  "type": kind, "enqueuedAt": ENQUEUED}, status=202)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        path = request.path
        self.requests.append(Seen(request.method, path, dict(request.query), body))
        if path == "/health":
            return web.json_response({"status": "available"})
        if path.startswith("/tasks/"):
            uid = int(path.rsplit("/", 1)[1])
            failed = uid in self.fail_tasks
            result: dict[str, Any] = {"uid": uid, "indexUid": "gust", "type": "documentAdditionOrUpdate",
                                      "status": "failed" if failed else "succeeded", "enqueuedAt": ENQUEUED}
            if failed:
                result["error"] = {"code": "invalid_document_id", "message": "bad id",
                                   "type": "invalid_request", "link": ""}
            return web.json_response(result)
        if path == "/indexes" and request.method == "POST":
            self.index_exists = True
            return self.task("indexCreation")
        if path == "/indexes/gust" and request.method == "GET":
            if not self.index_exists:
                return web.json_response({"message": "Index `gust` not found.", "code": "index_not_found",
                                          "type": "invalid_request", "link": ""}, status=404)
            return web.json_response({"uid": "gust", "primaryKey": "id", "createdAt": ENQUEUED,
                                      "updatedAt": ENQUEUED})
        if path == "/indexes/gust/settings":
            if request.method == "PATCH":
                self.settings.update(body)
                return self.task("settingsUpdate")
            return web.json_response(self.settings)
        if path == "/indexes/gust/documents" and request.method == "POST":
            return self.task("documentAdditionOrUpdate")
        if path == "/indexes/gust/documents" and request.method == "GET":
            offset, limit = int(request.query["offset"]), int(request.query["limit"])
            page = self.documents[offset : offset + limit]
            return web.json_response({"results": page, "offset": offset, "limit": limit,
                                      "total": len(self.documents)})
        if path == "/indexes/gust/documents/delete-batch":
            self.documents = [d for d in self.documents if d["id"] not in body]
            return self.task("documentDeletion")
        if path == "/indexes/gust/documents/delete":
            return self.task("documentDeletion")
        if path == "/indexes/gust/documents/fetch":
            wanted = set(body.get("ids") or [])
            results = [{"id": d["id"], "fingerprint": d["fingerprint"]} for d in self.documents
                       if d["id"] in wanted]
            return web.json_response({"results": results, "offset": 0, "limit": body["limit"], "total": 3})
        if path == "/indexes/gust/search":
            return web.json_response(self.search_answer)
        return web.json_response({"message": "no route", "code": "not_found", "type": "invalid_request",
                                  "link": ""}, status=404)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeMeili]:
    server = FakeMeili()
    await server.start()
    yield server
    assert server.runner is not None
    await server.runner.cleanup()


@pytest.fixture
async def meili(fake: FakeMeili) -> AsyncIterator[MeilisearchIndex]:
    index = MeilisearchIndex(f"http://127.0.0.1:{fake.port}", "master-key", batch_size=2, task_timeout=5)
    await index.start()
    yield index
    await index.close()


def chat(user: str = "alice") -> Chat:
    return Chat(id="c1", user_id=user, team_id="t1", title="Storms", model=None, created_at=1.0,
                updated_at=2.0)


def message(i: int, c: Chat) -> Message:
    return Message(id=f"m{i}", chat_id=c.id, user_id=c.user_id, role="user", content=f"text {i}",
                   status="complete", created_at=3.0, updated_at=3.0, team_id=c.team_id)


async def test_start_creates_the_index_and_applies_settings_once(
    fake: FakeMeili, meili: MeilisearchIndex
) -> None:
    assert [r.body for r in fake.seen("POST", "/indexes")] == [{"uid": "gust", "primaryKey": "id"}]
    [patch] = fake.seen("PATCH", "/settings")
    assert patch.body == {"searchableAttributes": SEARCHABLE, "filterableAttributes": FILTERABLE,
                          "sortableAttributes": SORTABLE}
    assert SEARCHABLE == ["title", "content"]  # order is ranking: titles above message text
    assert {"user_id", "team_id", "chat_id", "role"} <= set(FILTERABLE) and SORTABLE == ["created_at"]
    # A second start (another worker, a restart) finds the settings in place and changes nothing.
    again = MeilisearchIndex(f"http://127.0.0.1:{fake.port}", "master-key")
    await again.start()
    await again.close()
    assert len(fake.seen("PATCH", "/settings")) == 1
    assert len(fake.seen("POST", "/indexes")) == 1


async def test_upsert_sends_batches_and_waits_for_every_task(
    fake: FakeMeili, meili: MeilisearchIndex
) -> None:
    c = chat()
    docs = [chat_document(c)] + [message_document(message(i, c)) for i in range(4)]
    fake.requests.clear()
    await meili.upsert(docs)
    posts = fake.seen("POST", "/indexes/gust/documents")
    assert [len(p.body) for p in posts] == [2, 2, 1]
    assert all(p.query == {"primaryKey": "id"} for p in posts)
    first = posts[0].body[0]
    assert first == {"id": "c_c1", "kind": "chat", "user_id": "alice", "team_id": "t1", "chat_id": "c1",
                     "message_id": None, "role": None, "title": "Storms", "content": "",
                     "created_at": 2.0, "fingerprint": docs[0].fingerprint}
    waited = {int(r.path.rsplit("/", 1)[1]) for r in fake.seen("GET", "") if r.path.startswith("/tasks/")}
    assert waited == {fake.next_task - 2, fake.next_task - 1, fake.next_task}


async def test_a_failed_task_is_raised_not_swallowed(fake: FakeMeili, meili: MeilisearchIndex) -> None:
    c = chat()
    fake.fail_tasks = {fake.next_task + 2}  # the second of two batches fails
    with pytest.raises(SearchIndexError, match="invalid_document_id"):
        await meili.upsert([message_document(message(i, c)) for i in range(3)])
    fake.fail_tasks = {fake.next_task + 1}
    with pytest.raises(SearchIndexError, match="failed"):
        await meili.delete(["m_m1"])


async def test_search_always_filters_by_user_and_returns_escaped_snippets(
    fake: FakeMeili, meili: MeilisearchIndex
) -> None:
    fake.search_answer = {
        "hits": [{"id": "m_m1", "kind": "message", "chat_id": "c1", "message_id": "m1", "role": "user",
                  "created_at": 3.0, "content": "x",
                  "_formatted": {"content": f"<b>a</b> {MARK_START}storm{MARK_END} & more"}},
                 {"id": "c_c1", "kind": "chat", "chat_id": "c1", "message_id": None, "role": None,
                  "created_at": 2.0, "title": "Storms",
                  "_formatted": {"title": f"{MARK_START}Storms{MARK_END}"}}],
        "query": "storm", "processingTimeMs": 1, "limit": 20, "offset": 0, "estimatedTotalHits": 7,
    }
    page = await meili.search('al"ice', "storm", limit=20, offset=5, chat_id="c1", role="user")
    [sent] = fake.seen("POST", "/search")
    assert sent.body["q"] == "storm"
    assert sent.body["filter"] == 'user_id = "al\\"ice" AND chat_id = "c1" AND role = "user"'
    assert (sent.body["offset"], sent.body["limit"]) == (5, 20)
    assert sent.body["attributesToHighlight"] == ["title", "content"]
    assert sent.body["attributesToCrop"] == ["content"] and sent.body["cropLength"] > 0
    assert (sent.body["highlightPreTag"], sent.body["highlightPostTag"]) == (MARK_START, MARK_END)
    assert sent.body["matchingStrategy"] == "all"
    assert page.total_estimate == 7
    assert [h.snippet for h in page.hits] == ["&lt;b&gt;a&lt;/b&gt; <mark>storm</mark> &amp; more",
                                              "<mark>Storms</mark>"]
    assert (page.hits[1].kind, page.hits[1].message_id, page.hits[1].created_at) == ("chat", None, 2.0)

    await meili.search("bob", "storm", limit=5)
    assert fake.seen("POST", "/search")[-1].body["filter"] == 'user_id = "bob"'


async def test_chat_deletion_filters_by_user_and_chats(fake: FakeMeili, meili: MeilisearchIndex) -> None:
    await meili.delete_chat_documents("alice", ["c1", "c2"])
    [sent] = fake.seen("POST", "/documents/delete")
    assert sent.body == {"filter": 'user_id = "alice" AND chat_id IN ["c1", "c2"]'}


async def test_fingerprints_and_prune_page_through_the_documents(
    fake: FakeMeili, meili: MeilisearchIndex
) -> None:
    fake.documents = [{"id": f"m_m{i}", "kind": "message", "user_id": "alice", "chat_id": "c1",
                       "message_id": f"m{i}", "fingerprint": f"f{i}"} for i in range(7)]
    assert await meili.fingerprints(["m_m1", "m_m9"]) == {"m_m1": "f1"}
    assert fake.seen("POST", "/documents/fetch")[-1].body["ids"] == ["m_m1", "m_m9"]
    doomed = {"m_m0", "m_m1", "m_m4"}
    visited: list[str] = []

    async def orphans(refs: Sequence[DocRef]) -> Collection[str]:
        visited.extend(r.id for r in refs)
        return [r.id for r in refs if r.id in doomed]

    assert await meili.prune(orphans, batch_size=3) == 3
    assert sorted(visited) == [f"m_m{i}" for i in range(7)]  # no document skipped by the deletions
    assert [d["id"] for d in fake.documents] == ["m_m2", "m_m3", "m_m5", "m_m6"]


async def test_an_unreachable_server_is_a_search_error() -> None:
    index = MeilisearchIndex(f"http://127.0.0.1:{free_port()}", None, timeout=2)
    with pytest.raises(SearchIndexError):
        await index.start()
    with pytest.raises(SearchIndexError):
        await index.ping()
    with pytest.raises(SearchIndexError):
        await index.search("alice", "x", limit=5)
    await index.close()
