"""`null` in every field of every JSON body: refused (422) where the document says the field
is not nullable, never a 500, and never stored in a shape the read routes cannot answer.

Before: PATCH /api/chats/{id} with {"title": null} or {"archived": null} was a 500, and
{"pinned": null} was stored and then broke the chat list's schema.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from tests.support.app_server import RunningApp
from tests.support.client import Api


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _nullable(document: dict[str, Any], prop: dict[str, Any]) -> bool:
    prop = _resolve(document, prop)
    return prop.get("type") == "null" or any(
        _resolve(document, alt).get("type") == "null" for alt in prop.get("anyOf", [])
    )


def body_fields(document: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(method, path template, field, nullable) for every field of every JSON request body."""
    found = []
    for template, item in document["paths"].items():
        for method, op in item.items():
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            schema = _resolve(document, content["application/json"]["schema"])
            for name, prop in schema.get("properties", {}).items():
                found.append((method.upper(), template, name, _nullable(document, prop)))
    return found


async def test_null_in_every_body_field(app: RunningApp, http: aiohttp.ClientSession) -> None:
    document = app.app.openapi
    admin = await app.sign_up(http, "admin@example.com")  # the first account: an admin
    member = await app.sign_up(http, "member@example.com")
    chat = (await admin.post("/api/chats", {"title": "Nulls", "system_prompt": "be brief"})).json
    agent = (await admin.post("/api/agents", {"name": "Helper"})).json
    values = {
        "chat_id": chat["id"],
        "agent_id": agent["id"],
        "user_id": (await member.get("/api/auth/me")).json["id"],
        "key_id": "nokey",
        "invite_id": "noinvite",
        "message_id": "nomessage",
        "provider": "github",
    }
    fields = body_fields(document)
    assert len(fields) > 40, fields

    outcomes = []
    for method, template, name, nullable in fields:
        path = re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "none"), template)
        resp = await admin.request(method, path, json_body={name: None})
        outcomes.append((method, template, name, nullable, resp.status, resp.error_code))
    server_errors = [o for o in outcomes if o[4] >= 500]
    assert not server_errors, server_errors
    accepted_null = [o for o in outcomes if not o[3] and o[4] < 400]
    assert not accepted_null, accepted_null  # a non-nullable field took a null

    # Whatever was accepted is still readable in the documented shapes (the client checks
    # every response against the document).
    for path in ("/api/chats", f"/api/chats/{chat['id']}", "/api/agents", f"/api/agents/{agent['id']}",
                 "/api/admin/users", "/api/auth/me"):
        resp = await admin.get(path)
        assert resp.status == 200, (path, resp.text)
    assert (await member.get("/api/auth/me")).status == 200
    # The document says which fields refuse null.
    for name in ("title", "pinned", "archived"):
        assert ("PATCH", "/api/chats/{chat_id}", name, False) in fields
    assert ("PATCH", "/api/chats/{chat_id}", "agent_id", True) in fields


async def test_patch_null_is_422_naming_the_field_and_changes_nothing(app: RunningApp, api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    chat = (await ann.post("/api/chats", {"title": "Keep me", "system_prompt": "x"})).json
    for name in ("title", "pinned", "archived"):
        resp = await ann.patch(f"/api/chats/{chat['id']}", {name: None})
        assert (resp.status, resp.error_code) == (422, "validation_error"), resp.text
        assert resp.json["error"]["field"] == name
    after = (await ann.get(f"/api/chats/{chat['id']}")).json
    assert (after["title"], after["pinned"], after["archived"]) == ("Keep me", False, False)
    # Where null means "none", it is accepted and clears the field.
    cleared = await ann.patch(f"/api/chats/{chat['id']}", {"system_prompt": None, "model": None})
    assert cleared.status == 200, cleared.text
    assert cleared.json["system_prompt"] is None
    listed = await ann.get("/api/chats")
    assert [c["id"] for c in listed.json["items"]] == [chat["id"]]
