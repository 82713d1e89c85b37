"""Personal API keys: shown once, stored hashed, usable as Bearer, last use recorded."""

from __future__ import annotations

import hashlib
import sqlite3

from tests.support.app_server import RunningApp
from tests.support.client import Api


async def test_key_is_shown_once_and_works_as_bearer(app: RunningApp, api: Api) -> None:
    user = await api.register_and_login("a@example.com")
    created = await user.post("/api/auth/api-keys", {"name": "  laptop   cli "})
    assert created.status == 201, created.text
    key = created.json["key"]
    assert key.startswith("gust_") and len(key) > 40
    assert created.json["name"] == "laptop cli" and created.json["prefix"] == key[:11]
    assert created.json["last_used_at"] is None

    listed = await user.get("/api/auth/api-keys")
    assert [k["id"] for k in listed.json["items"]] == [created.json["id"]]
    assert key not in listed.text and "key_hash" not in listed.text

    me = await api.get("/api/auth/me", token=key)
    assert me.status == 200 and me.json["email"] == "a@example.com"
    chat = await api.post("/api/chats", {"title": "via key"}, token=key)
    assert chat.status == 201
    used = (await user.get("/api/auth/api-keys")).json["items"][0]
    assert used["last_used_at"] is not None

    # Stored as a SHA-256 digest only.
    with sqlite3.connect(app.settings.sqlite_path) as conn:
        raw = " ".join(row[0] for row in conn.execute("SELECT data FROM api_keys"))
    assert key not in raw and hashlib.sha256(key.encode()).hexdigest() in raw


async def test_deleted_or_unknown_keys_are_refused(api: Api) -> None:
    user = await api.register_and_login("a@example.com")
    key = (await user.post("/api/auth/api-keys", {"name": "ci"})).json
    assert (await user.delete(f"/api/auth/api-keys/{key['id']}")).status == 204
    assert (await user.delete(f"/api/auth/api-keys/{key['id']}")).status == 404
    for token in (key["key"], "gust_" + "x" * 43, "gust_"):
        refused = await api.get("/api/auth/me", token=token)
        assert (refused.status, refused.error_code) == (401, "invalid_token")


async def test_keys_belong_to_their_owner(api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    bob = await api.register_and_login("bob@example.com")
    key = (await ann.post("/api/auth/api-keys", {"name": "ci"})).json
    assert (await bob.get("/api/auth/api-keys")).json["items"] == []
    assert (await bob.delete(f"/api/auth/api-keys/{key['id']}")).status == 404
    assert (await api.get("/api/auth/me", token=key["key"])).json["email"] == "ann@example.com"


async def test_a_key_cannot_mint_keys_or_change_the_password(api: Api) -> None:
    user = await api.register_and_login("a@example.com")
    key = (await user.post("/api/auth/api-keys", {"name": "ci"})).json["key"]
    for path, body in (("/api/auth/api-keys", {"name": "more"}),
                       ("/api/auth/password", {"current_password": "correct horse 1",
                                               "new_password": "another pass 99"})):
        resp = await api.post(path, body, token=key)
        assert (resp.status, resp.error_code) == (403, "api_key_not_allowed")
    assert (await api.get("/api/auth/api-keys", token=key)).status == 200


async def test_name_is_required(api: Api) -> None:
    user = await api.register_and_login("a@example.com")
    resp = await user.post("/api/auth/api-keys", {"name": ""})
    assert (resp.status, resp.error_code) == (422, "validation_error")
