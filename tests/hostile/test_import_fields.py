"""Every field of an import file is checked as if an attacker typed it (issue 18, finding 4).

A conversation with any bad field is skipped whole with a reason; what is imported never
breaks a page or an export, its usage is shown but never counted, and its sources are
rebuilt. Runs on SQLite and MongoDB.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest

from tests.support.app_server import RunningApp
from tests.support.client import Api

pytestmark = pytest.mark.both_stores  # the app fixture runs on SQLite, then MongoDB

AT = "2025-01-01T00:00:00Z"


def message(**fields: Any) -> dict[str, Any]:
    return {"id": "m1", "role": "assistant", "content": "An answer.", "created_at": AT, **fields}


def document(title: str, messages: list[dict[str, Any]], /, **chat: Any) -> dict[str, Any]:
    return {"format": "gust.chat", "version": 1, "chat": {"title": title, "created_at": AT, **chat},
            "messages": messages}


HOSTILE_MESSAGES: list[tuple[str, dict[str, Any]]] = [
    ("negative tokens", {"usage": {"prompt_tokens": -1_000_000, "completion_tokens": 5}}),
    ("huge tokens", {"usage": {"prompt_tokens": 10**18, "completion_tokens": 10**18}}),
    ("negative cost", {"usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": -500.0}}),
    ("huge cost", {"usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": 1e300}}),
    ("tokens as text", {"usage": {"prompt_tokens": "7", "completion_tokens": 1}}),
    ("tokens as bool", {"usage": {"prompt_tokens": True, "completion_tokens": 1}}),
    ("usage as a list", {"usage": [1, 2]}),
    ("nested cost", {"usage": {"prompt_tokens": 1, "completion_tokens": 1, "cost": [[[[1]]]]}}),
    ("content as an object", {"content": {"text": "hi"}}),
    ("content too long", {"content": "x" * 2_000_001}),
    ("reasoning as a list", {"reasoning": ["a"]}),
    ("unknown role", {"role": "admin"}),
    ("unknown status", {"status": "hacked"}),
    ("time in the far future", {"created_at": "2999-01-01T00:00:00Z"}),
    ("time in year 1", {"created_at": "0001-01-01T00:00:00Z"}),
    ("time as a huge number", {"created_at": 1e300}),
    ("model name too long", {"model": "m" * 1000}),
    ("model as an object", {"model": {"$gt": ""}}),
    ("id as a number", {"id": 5}),
    ("parent id as an object", {"parent_id": {"$ne": None}}),
    ("sources as an object", {"sources": {"n": 1, "url": "https://example.com/"}}),
    ("a source as text", {"sources": ["https://example.com/"]}),
    ("too many sources", {"sources": [{"url": f"https://example.com/{i}"} for i in range(51)]}),
    ("error as text", {"error": "boom"}),
    ("error code with markup", {"error": {"code": "<img src=x>", "message": "x"}}),
]

HOSTILE_CHATS: list[tuple[str, dict[str, Any]]] = [
    ("pinned as text", {"pinned": "yes"}),
    ("archived as a number", {"archived": 1}),
    ("system prompt too long", {"system_prompt": "x" * 20_001}),
    ("chat model as a list", {"model": ["a"]}),
    ("chat time in the future", {"created_at": "2999-01-01T00:00:00Z"}),
    ("title as an object", {"title": {"a": 1}}),
]


async def check_pages(alice: Api, chat_ids: list[str]) -> None:
    """Every page and export that shows an imported chat answers, and well."""
    assert (await alice.get("/api/chats?archived=false")).status == 200
    assert (await alice.get("/api/chats?archived=true")).status == 200
    for chat_id in chat_ids:
        assert (await alice.get(f"/api/chats/{chat_id}")).status == 200
        for fmt in ("md", "json"):
            resp = await alice.get(f"/api/chats/{chat_id}/export?format={fmt}")
            assert resp.status == 200, resp.text
        share = await alice.post(f"/api/chats/{chat_id}/share")
        assert share.status in (200, 201), share.text
        assert (await alice.get(f"/api/shares/{share.json['id']}", auth=False)).status == 200
    headers = {"Authorization": f"Bearer {alice.token}"}
    async with alice.session.get(alice.base_url + "/api/export", headers=headers) as download:
        assert download.status == 200
        with zipfile.ZipFile(io.BytesIO(await download.read())) as zf:
            assert zf.testzip() is None


async def test_a_bad_field_anywhere_skips_its_conversation_whole(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    docs = [document(f"message: {label}", [message(**fields)]) for label, fields in HOSTILE_MESSAGES]
    docs += [document(f"chat: {label}", [message()], **fields) for label, fields in HOSTILE_CHATS]
    docs.append(document("Fine", [message()]))
    resp = await alice.post("/api/import", docs)
    assert resp.status == 200, resp.text
    assert [c["title"] for c in resp.json["imported"]] == ["Fine"]
    skipped = [s["title"] for s in resp.json["skipped"]]
    expected = [f"message: {label}" for label, _ in HOSTILE_MESSAGES]
    expected += [f"chat: {label}" if label != "title as an object" else "Imported chat"
                 for label, _ in HOSTILE_CHATS]
    assert skipped == expected
    assert all(s["reason"] for s in resp.json["skipped"])
    await check_pages(alice, [resp.json["imported"][0]["chat_id"]])


async def test_imported_usage_is_shown_but_never_counted(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")  # the first account: a team admin
    usage = {"prompt_tokens": 90_000_000, "completion_tokens": 90_000_000, "cost": 99_999.0}
    resp = await alice.post("/api/import", [document("Costly", [message(usage=usage, model="gpt-x")])])
    assert resp.status == 200 and len(resp.json["imported"]) == 1, resp.text
    chat_id = resp.json["imported"][0]["chat_id"]
    [shown] = (await alice.get(f"/api/chats/{chat_id}")).json["messages"]
    assert shown["usage"] == {**usage, "imported": True}
    for query in ("", "?all=true"):
        report = await alice.get(f"/api/usage{query}")
        assert report.status == 200, report.text
        assert report.json["totals"]["messages"] == 0 and report.json["totals"]["cost"] == 0
        assert report.json["totals"]["total_tokens"] == 0


async def test_sources_are_rebuilt_with_unique_numbers_and_safe_links(app: RunningApp, api: Api) -> None:
    alice = await api.register_and_login("alice@example.com")
    sources = [
        {"n": 2, "url": "https://b.example/", "title": "B"},
        {"n": 2, "url": "https://a.example/", "title": "A"},
        {"url": "javascript:alert(1)", "title": "script"},
        {"n": 1, "url": "data:text/html,<b>x</b>", "title": "data"},
        {"url": "https://c.example/", "title": "C" * 5000, "extra": {"deep": [[[]]]}},
        {"n": "7", "url": "https://d.example/"},
        {"n": 1, "url": 42},
    ]
    resp = await alice.post("/api/import", [document("Cited", [message(sources=sources)])])
    assert resp.status == 200 and len(resp.json["imported"]) == 1, resp.text
    chat_id = resp.json["imported"][0]["chat_id"]
    [shown] = (await alice.get(f"/api/chats/{chat_id}")).json["messages"]
    kept = shown["sources"]
    assert [s["n"] for s in kept] == [1, 2, 3, 4]
    assert [s["url"] for s in kept] == ["https://b.example/", "https://a.example/", "https://c.example/",
                                        "https://d.example/"]
    assert all(set(s) == {"n", "url", "title"} and len(s["title"]) <= 300 for s in kept)
    assert kept[3]["title"] == "https://d.example/"
    await check_pages(alice, [chat_id])


async def test_odd_text_and_times_are_made_safe_not_fatal(app: RunningApp, api: Api) -> None:
    """Lone surrogates become U+FFFD; ChatGPT times that are not plausible fall back."""
    alice = await api.register_and_login("alice@example.com")
    gust = document("Surrogates \ud800", [message(content="half an emoji: \ud83d", reasoning="\udfff")])
    chatgpt = {"title": "Far future", "create_time": 1e300, "update_time": -1e300, "mapping": {
        "r": {"id": "r", "parent": None, "children": ["u"], "message": None},
        "u": {"id": "u", "parent": "r", "children": [], "message": {
            "author": {"role": "user"}, "create_time": 1e300, "content": {"parts": ["hello \udc00"]},
            "metadata": {"model_slug": "x" * 10_000}}},
    }}
    resp = await alice.request("POST", "/api/import", data=json.dumps([gust, chatgpt]),
                               headers={"Content-Type": "application/json"})
    assert resp.status == 200, resp.text
    assert len(resp.json["imported"]) == 2 and resp.json["skipped"] == [], resp.json
    ids = [c["chat_id"] for c in resp.json["imported"]]
    first = (await alice.get(f"/api/chats/{ids[0]}")).json
    assert first["title"] == "Surrogates \ufffd"
    assert first["messages"][0]["content"] == "half an emoji: \ufffd"
    second = (await alice.get(f"/api/chats/{ids[1]}")).json
    assert second["created_at"] < "2100" and second["messages"][0]["model"] is None
    await check_pages(alice, ids)


@pytest.mark.parametrize("body", [b'[{"format": "gust.chat", "version": 1, "x": NaN}]',
                                  b'{"title": "t", "create_time": Infinity, "mapping": {}}'])
async def test_json_constants_are_not_numbers(app: RunningApp, api: Api, body: bytes) -> None:
    alice = await api.register_and_login("alice@example.com")
    resp = await alice.request("POST", "/api/import", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400 and resp.error_code == "invalid_import_file"


@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary=",
                                          "multipart/form-data; boundary=abc"])
async def test_a_malformed_multipart_upload_is_a_400(app: RunningApp, api: Api, content_type: str) -> None:
    alice = await api.register_and_login("alice@example.com")
    resp = await alice.request("POST", "/api/import", data=b"--abc\r\nno end",
                               headers={"Content-Type": content_type})
    assert resp.status == 400 and resp.error_code == "invalid_multipart"


@pytest.mark.parametrize("body", [b"[" * 65 + b"]" * 65, b'{"a":' * 500 + b"1" + b"}" * 500, b"[" * 2000],
                         ids=["65-levels", "500-objects", "unclosed"])
async def test_json_nested_too_deep_is_a_400(app: RunningApp, api: Api, body: bytes) -> None:
    alice = await api.register_and_login("alice@example.com")
    resp = await alice.request("POST", "/api/import", data=body, headers={"Content-Type": "application/json"})
    assert (resp.status, resp.error_code) == (400, "json_too_deep")
    doc = document("Deep usage", [message(usage={"prompt_tokens": 1, "extra": [[[[[[[[[[]]]]]]]]]]})])
    resp = await alice.post("/api/import", [doc])  # well under the depth limit: its extra field is dropped
    assert resp.status == 200 and resp.json["imported"], resp.text
    [shown] = (await alice.get(f"/api/chats/{resp.json['imported'][0]['chat_id']}")).json["messages"]
    assert shown["usage"] == {"prompt_tokens": 1, "completion_tokens": 0, "imported": True}
