"""The files API over HTTP on both backends: upload, list, read, download, delete, search.

sqlite: a directory of bytes, SQLite store, SQLite FTS5 + sqlite-vec passages.
mongodb: FerretDB store, GridFS bytes, Meilisearch passages (TEST_* servers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gust.domain.models import User
from gust.domain.retrieval import RetrievalHit
from tests.support.app_server import RunningApp
from tests.support.backends import Backend
from tests.support.client import Api
from tests.support.documents import docx
from tests.support.fake_embeddings import FakeEmbeddings
from tests.support.uploads import MULTIPART, files_app, form, settled, upload
from tests.support.wait import until

NOTES = b"# Travel notes\n\nThe quartermaster hid the brass key under the lighthouse stairs.\n"


@pytest.fixture
async def embeddings() -> AsyncIterator[FakeEmbeddings]:
    server = await FakeEmbeddings().start()
    yield server
    await server.stop()


pytestmark = pytest.mark.both_stores


@pytest.fixture
async def app(backend: Backend, data_dir: Path, embeddings: FakeEmbeddings) -> AsyncIterator[RunningApp]:
    # Vectors from the fake OpenAI-compatible embedder: hybrid retrieval on both backends.
    async with files_app(backend, data_dir, embeddings="openai",
                         embeddings_url=embeddings.url, embeddings_model="fake") as running:
        yield running


async def user_of(app: RunningApp, email: str) -> User:
    user = await app.services.store.get_user_by_email(email)
    assert user is not None
    return user


async def test_upload_list_read_download_and_delete(app: RunningApp, http: aiohttp.ClientSession) -> None:
    alice = await app.sign_up(http, "alice@example.com")
    bob = await app.sign_up(http, "bob@example.com")
    created = await upload(alice, "notes.md", NOTES)
    assert created.status == 201, created.text
    file_id = created.json["id"]
    assert created.json["status"] in ("processing", "ready")
    assert created.json["name"] == "notes.md" and created.json["size"] == len(NOTES)
    assert created.json["content_type"].startswith("text/")  # sniffed: text, whatever the name
    ready = await settled(alice, file_id)
    assert ready["status"] == "ready" and ready["chunks"] >= 1, ready

    listed = await alice.get("/api/files")
    assert [item["id"] for item in listed.json["items"]] == [file_id] and listed.json["next_cursor"] is None
    content = await alice.get(f"/api/files/{file_id}/content")
    assert content.status == 200 and content.text.encode() == NOTES
    assert content.headers["Content-Disposition"].startswith('attachment; filename="notes.md"')
    assert content.headers["X-Content-Type-Options"] == "nosniff"

    # Another user sees nothing of it, and cannot delete it.
    for path in (f"/api/files/{file_id}", f"/api/files/{file_id}/content"):
        assert (await bob.get(path)).status == 404
    assert (await bob.delete(f"/api/files/{file_id}")).status == 404
    assert (await bob.get("/api/files")).json["items"] == []
    assert (await alice.get(f"/api/files/{file_id}")).status == 200

    owner = await user_of(app, "alice@example.com")
    knowledge = app.services.knowledge
    assert await until(lambda: _count(app, file_id), timeout=30)
    deleted = await alice.delete(f"/api/files/{file_id}")
    assert deleted.status == 204, deleted.text
    assert (await alice.get(f"/api/files/{file_id}")).status == 404
    assert (await alice.get(f"/api/files/{file_id}/content")).status == 404
    assert (await alice.get("/api/files")).json["items"] == []
    assert not await app.services.files.storage.exists(owner.id, file_id)
    assert await knowledge.retrieval.count(file_id) == 0
    assert await knowledge.search(owner, "quartermaster brass key", 5) == []


async def _count(app: RunningApp, file_id: str) -> bool:
    return await app.services.knowledge.retrieval.count(file_id) > 0


async def test_search_finds_a_ready_files_passage_for_its_owner_only(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    alice = await app.sign_up(http, "alice@example.com")
    await app.sign_up(http, "bob@example.com")
    document = docx([("h1", "Harbour logistics"),
                     ("p", "Ferries to Zanzibarnia leave from pier nine every Tuesday."),
                     ("h1", "Weather"), ("p", "Storms close the harbour in March.")])
    created = await upload(alice, "harbour.docx", document)
    assert created.status == 201, created.text
    assert (await settled(alice, created.json["id"]))["status"] == "ready"
    owner, other = await user_of(app, "alice@example.com"), await user_of(app, "bob@example.com")
    knowledge = app.services.knowledge
    hits: list[RetrievalHit] = []

    async def found() -> bool:
        hits[:] = await knowledge.search(owner, "when do ferries leave for Zanzibarnia", 3)
        return bool(hits)

    assert await until(found, timeout=30, interval=0.1), "the ready file's passage was never found"
    assert hits[0].file_id == created.json["id"] and "pier nine" in hits[0].text
    assert hits[0].section == "Harbour logistics"
    assert await knowledge.search(other, "when do ferries leave for Zanzibarnia", 3) == []


async def test_pages_of_the_list_follow_the_cursor(app: RunningApp, http: aiohttp.ClientSession) -> None:
    alice = await app.sign_up(http, "alice@example.com")
    ids = []
    for n in range(3):
        created = await upload(alice, f"n{n}.txt", f"note number {n}\n".encode())
        assert created.status == 201, created.text
        ids.append(created.json["id"])
    first = await alice.get("/api/files?limit=2")
    assert len(first.json["items"]) == 2 and first.json["next_cursor"]
    rest = await alice.get(f"/api/files?limit=2&cursor={first.json['next_cursor']}")
    assert rest.json["next_cursor"] is None
    seen = [item["id"] for item in first.json["items"] + rest.json["items"]]
    assert sorted(seen) == sorted(ids)


async def test_types_are_sniffed_and_unsupported_content_is_415(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    alice = await app.sign_up(http, "alice@example.com")
    binary = await upload(alice, "report.pdf", b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8)
    assert (binary.status, binary.error_code) == (415, "unsupported_file_type"), binary.text
    named_docx = await upload(alice, "plain.docx", b"just words, whatever the name says\n")
    assert named_docx.status == 201 and named_docx.json["content_type"].startswith("text/plain")
    listed = await alice.get("/api/files")
    assert [item["id"] for item in listed.json["items"]] == [named_docx.json["id"]]


async def test_malformed_multipart_is_a_400_and_stores_nothing(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    alice = await app.sign_up(http, "alice@example.com")
    whole = form("a.txt", b"hello there\n")
    cases: dict[str, tuple[bytes, str]] = {
        "no boundary": (whole, "multipart/form-data"),
        "not multipart": (b"hello", "text/plain"),
        "truncated": (whole[: len(whole) - 12], MULTIPART),
        "no file field": (form("a.txt", b"hello\n", field="other"), MULTIPART),
        "garbage after a boundary": (whole.replace(b"\r\nContent-Disposition", b"junk\r\nContent-Disposition",
                                                   1), MULTIPART),
        "header without a colon": (whole.replace(b"Content-Type:", b"Content-Type", 1), MULTIPART),
        "no closing boundary at all": (b"\r\n".join(whole.split(b"\r\n")[:4]), MULTIPART),
    }
    for what, (body, content_type) in cases.items():
        resp = await alice.request("POST", "/api/files", data=body, headers={"Content-Type": content_type})
        assert resp.status == 400, (what, resp.status, resp.text)
        assert resp.error_code in ("invalid_multipart", "file_missing"), (what, resp.text)
    assert (await alice.get("/api/files")).json["items"] == []
    assert _stored_files(app) == []


def _stored_files(app: RunningApp) -> list[Path]:
    root = app.settings.files_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_a_cookie_upload_needs_the_csrf_token(
    app: RunningApp, cookie_http: aiohttp.ClientSession
) -> None:
    browser = Api(app.url, cookie_http)
    await browser.post("/api/auth/register", {"email": "c@example.com", "password": "correct horse 1"})
    assert (await browser.post("/api/auth/login", {"email": "c@example.com",
                                                  "password": "correct horse 1"})).status == 200
    token = next(c.value for c in cookie_http.cookie_jar if c.key == "gust_csrf")
    headers = {"Content-Type": MULTIPART, "Origin": app.url}
    refused = await browser.request("POST", "/api/files", data=form("a.txt", b"hi\n"), headers=headers)
    assert (refused.status, refused.error_code) == (403, "csrf_token")
    accepted = await browser.request("POST", "/api/files", data=form("a.txt", b"hi\n"),
                                     headers={**headers, "X-CSRF-Token": token})
    assert accepted.status == 201, accepted.text
