"""The authorization matrix: every route and method of the running app has a policy in
POLICIES, and the app enforces it.

- public: anonymous callers get the listed statuses, never the 401 of the auth gate;
- user: anonymous -> 401 (a signed-in user's own resources, no object in the path);
- owned: anonymous -> 401, user B on user A's object -> 404 (and A's object is untouched),
  A reading it -> 200;
- admin: anonymous -> 401, a non-admin -> 403, the admin reading it -> 200;
- team_read / team_admin: anonymous -> 401, the admin of team Y on team X's agent -> 404,
  a member of team X -> 200 (read) or 403 (admin-only write).

The API-key column: the admin's key (`Bearer gust_...`) is refused with 403 api_key_not_allowed
on every route not marked `key=True` (keys chat, search, use the owner's chats and /v1; they
never administer accounts), so a new route is refused to keys until someone decides otherwise.

A route that exists in the app but not in POLICIES fails the test: add it to the table.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
from PIL import Image

from gust.domain.ids import new_id
from gust.domain.models import Message, Team
from gust.handlers.routing import implemented_methods
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.fake_upstream import FakeUpstream
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProvider
from tests.support.openapi_check import OpenAPIChecker
from tests.support.uploads import MULTIPART, form
from tests.support.wait import until

Kind = Literal["public", "user", "owned", "admin", "team_read", "team_admin", "team_list"]
PASSWORD = "correct horse 1"
SECRET_WORD = "zebracornium"  # in A's chat and message: B's search must not find it


@dataclass(frozen=True)
class Policy:
    kind: Kind
    body: Any = None  # a valid body: only authorization may decide the answer
    raw: bytes | None = None  # a raw body instead (uploads)
    content_type: str | None = None  # of the raw body
    query: str = ""
    public_statuses: frozenset[int] = field(default_factory=frozenset)
    owner_reads: bool = True  # for GET: the owner / admin / member gets 200
    key: bool = False  # an API key may call it; every other route is 403 api_key_not_allowed


def public(*statuses: int, body: Any = None, query: str = "", key: bool = False) -> Policy:
    return Policy("public", body=body, query=query, public_statuses=frozenset(statuses), key=key)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


AGENT = {"name": "Matrix agent", "system_prompt": "p",
         "webhook": {"url": "https://h.example.com/x", "token": "t"}}
SEND = {"message": "hello there"}
T0 = "2025-01-01T00:00:00Z"
IMPORT_DOC = {"format": "gust.chat", "version": 1, "chat": {"title": "Imported", "created_at": T0},
              "messages": [{"id": "m1", "role": "user", "content": "hi", "created_at": T0}]}

POLICIES: dict[tuple[str, str], Policy] = {
    # -- public ------------------------------------------------------------------------
    ("GET", "/health"): public(200, key=True),
    ("GET", "/health/ready"): public(200, 503, key=True),
    ("GET", "/metrics"): public(200, key=True),
    ("GET", "/api"): public(200, key=True),
    ("GET", "/api/openapi.json"): public(200, key=True),
    ("GET", "/api/docs"): public(200, key=True),
    ("GET", "/api/docs/init.js"): public(200, key=True),
    ("GET", "/api/docs/assets/{path}"): public(200, key=True),
    ("GET", "/"): public(200, key=True),
    ("GET", "/c/{chat_id}"): public(200, key=True),
    ("GET", "/s/{share_id}"): public(200, key=True),
    ("GET", "/usage"): public(200, key=True),  # the UI's usage page (data from /api/usage)
    ("GET", "/api/shares/{share_id}"): public(404, key=True),  # unknown ids and revoked links alike
    ("GET", "/assets/{path}"): public(200, 404, key=True),  # 404 until the UI is built
    ("POST", "/api/auth/register"): public(201, body={"email": "new@example.com", "password": PASSWORD}),
    ("POST", "/api/auth/login"): public(200, body={"email": "a@example.com", "password": PASSWORD}),
    ("POST", "/api/auth/refresh"): public(401),  # no refresh cookie: invalid_refresh_token
    ("POST", "/api/auth/logout"): public(204),
    ("GET", "/api/auth/providers"): public(200, key=True),
    ("GET", "/api/auth/oauth/{provider}/start"): public(302),
    ("GET", "/api/auth/oauth/{provider}/callback"): public(302),  # refused: no state cookie
    ("POST", "/api/auth/oauth/{provider}/callback"): public(303),
    # -- any signed-in user, about themselves --------------------------------------------
    ("GET", "/api/auth/me"): Policy("user", key=True),
    ("PATCH", "/api/auth/me"): Policy("user", body={"display_name": "renamed"}),
    ("GET", "/api/settings/suggestions"): Policy("user", key=True),
    ("POST", "/api/auth/password"): Policy("user", body={"current_password": PASSWORD,
                                                         "new_password": "another pass 2"}),
    ("GET", "/api/auth/api-keys"): Policy("user", key=True),
    ("POST", "/api/auth/api-keys"): Policy("user", body={"name": "k"}),
    ("GET", "/api/chats"): Policy("user", key=True),
    ("GET", "/api/events"): Policy("user"),  # an endless stream: checked anonymously only
    ("POST", "/api/chats"): Policy("user", body={"title": "t"}, key=True),
    ("GET", "/api/models"): Policy("user", key=True),
    ("GET", "/api/search"): Policy("user", query=f"?q={SECRET_WORD}", key=True),
    ("GET", "/v1/models"): Policy("user", key=True),
    ("POST", "/v1/chat/completions"): Policy("user", body={"model": "fake-model",
                                                           "messages": [{"role": "user", "content": "hi"}]},
                                             key=True),
    ("GET", "/api/export"): Policy("user", key=True),
    ("POST", "/api/import"): Policy("user", body=IMPORT_DOC, key=True),
    ("GET", "/api/files"): Policy("user", key=True),
    ("POST", "/api/files"): Policy("user", raw=form("notes.txt", b"matrix notes\n"), content_type=MULTIPART,
                                   key=True),
    # -- user A's objects ----------------------------------------------------------------
    ("GET", "/api/files/{file_id}"): Policy("owned", key=True),
    ("DELETE", "/api/files/{file_id}"): Policy("owned", key=True),
    ("GET", "/api/files/{file_id}/content"): Policy("owned", key=True),
    ("POST", "/chat/stream"): Policy("owned", body={**SEND, "chat_id": "{chat_id}"}, owner_reads=False,
                                     key=True),
    ("POST", "/chat/message"): Policy("owned", body={**SEND, "chat_id": "{chat_id}"}, owner_reads=False,
                                      key=True),
    ("GET", "/api/chats/{chat_id}"): Policy("owned", key=True),
    ("PATCH", "/api/chats/{chat_id}"): Policy("owned", body={"title": "stolen"}, key=True),
    ("DELETE", "/api/chats/{chat_id}"): Policy("owned", key=True),
    ("GET", "/api/chats/{chat_id}/messages"): Policy("owned", key=True),
    ("GET", "/api/chats/{chat_id}/share"): Policy("owned", owner_reads=False, key=True),  # 404 until shared
    ("POST", "/api/chats/{chat_id}/share"): Policy("owned"),
    ("DELETE", "/api/chats/{chat_id}/share"): Policy("owned"),
    ("GET", "/api/chats/{chat_id}/export"): Policy("owned", key=True),
    ("POST", "/api/chats/{chat_id}/messages"): Policy("owned", body=SEND, key=True),
    ("GET", "/api/chats/{chat_id}/events"): Policy("owned", key=True),
    ("POST", "/api/chats/{chat_id}/stop"): Policy("owned", key=True),
    ("POST", "/api/chats/{chat_id}/messages/{message_id}/regenerate"): Policy("owned", body={}, key=True),
    ("DELETE", "/api/auth/api-keys/{key_id}"): Policy("owned"),
    ("DELETE", "/api/chats/{chat_id}/messages/{message_id}"): Policy("owned"),
    ("PUT", "/api/chats/{chat_id}/messages/{message_id}/feedback"): Policy("owned", body={"rating": 1}),
    ("POST", "/api/chats/{chat_id}/messages/{message_id}/continue"): Policy("owned", owner_reads=False),
    ("GET", "/api/prompts"): Policy("user"),
    ("POST", "/api/prompts"): Policy("user", body={"name": "n", "command": "matrix", "body": "b"}),
    ("GET", "/api/prompts/{prompt_id}"): Policy("owned"),  # A's personal prompt
    ("PATCH", "/api/prompts/{prompt_id}"): Policy("owned", body={"body": "stolen"}),
    ("DELETE", "/api/prompts/{prompt_id}"): Policy("owned"),
    ("GET", "/api/prompts/{prompt_id}/versions"): Policy("owned"),
    # -- admins of the team ----------------------------------------------------------------
    ("GET", "/api/admin/users"): Policy("admin"),
    ("PATCH", "/api/admin/users/{user_id}"): Policy("admin", body={"role": "admin"}),  # B promoting B
    ("GET", "/api/admin/invites"): Policy("admin"),
    ("POST", "/api/admin/invites"): Policy("admin", body={"role": "admin"}),
    ("DELETE", "/api/admin/invites/{invite_id}"): Policy("admin"),
    ("GET", "/api/admin/errors"): Policy("admin"),
    ("GET", "/api/usage"): Policy("admin", query="?all=true"),
    ("GET", "/api/admin/feedback"): Policy("admin"),  # without all=true: my own usage
    ("GET", "/api/usage/daily"): Policy("admin", query="?all=true"),
    ("PUT", "/api/admin/suggestions"): Policy("admin", body={"items": ["a suggestion"]}),
    # -- team objects (agents) -------------------------------------------------------------
    ("GET", "/api/agents"): Policy("team_list", key=True),
    ("POST", "/api/agents"): Policy("team_admin", body=AGENT),
    ("GET", "/api/agents/{agent_id}"): Policy("team_read", key=True),
    ("PUT", "/api/agents/{agent_id}"): Policy("team_admin", body=AGENT),
    ("DELETE", "/api/agents/{agent_id}"): Policy("team_admin"),
    ("GET", "/api/agents/{agent_id}/avatar"): Policy("team_read", key=True),
    ("PUT", "/api/agents/{agent_id}/avatar"): Policy("team_admin", raw=png()),
}


def app_routes(app: RunningApp) -> set[tuple[str, str]]:
    found = set()
    for rule in app.app.wildcard_router.rules:
        template = getattr(rule, "template", None)
        if template and isinstance(rule.target, type):
            found |= {(m.upper(), template) for m in implemented_methods(rule.target)}
    return found


@dataclass
class Caller:
    name: str
    token: str | None = None


@dataclass
class Answer:
    status: int
    code: str | None
    body: Any


class Matrix:
    def __init__(self, app: RunningApp, session: aiohttp.ClientSession) -> None:
        self.app = app
        self.session = session
        self.checker = OpenAPIChecker(app.app.openapi)
        self.ids: dict[str, str] = {"path": "swagger-ui.css", "provider": "oidc",
                                    "share_id": "no-such-share-0123456789abcdef"}

    def path(self, template: str, policy: Policy) -> str:
        extra = {"path": "index.js"} if template == "/assets/{path}" else {}
        return template.format(**{**self.ids, **extra}) + policy.query

    async def call(self, method: str, template: str, policy: Policy, caller: Caller) -> Answer:
        headers = {"Authorization": f"Bearer {caller.token}"} if caller.token else {}
        data: bytes | None = policy.raw
        if policy.content_type:
            headers["Content-Type"] = policy.content_type
        if policy.body is not None:
            data = json.dumps(policy.body).replace("{chat_id}", self.ids["chat_id"]).encode()
            headers["Content-Type"] = "application/json"
        path = self.path(template, policy)
        async with self.session.request(method, self.app.url + path, data=data, headers=headers,
                                        allow_redirects=False) as resp:
            raw = await resp.read()
            content_type = resp.headers.get("Content-Type", "")
            body = json.loads(raw) if "json" in content_type and raw else None
        self.checker.check(method, path.split("?")[0], resp.status, content_type, body)
        error = body.get("error") if isinstance(body, dict) else None
        code = error["code"] if isinstance(error, dict) else None
        return Answer(resp.status, code, body)

    async def login(self, email: str) -> Caller:
        async with self.session.post(self.app.url + "/api/auth/login",
                                     json={"email": email, "password": PASSWORD}) as resp:
            assert resp.status == 200, await resp.text()
            return Caller(email, (await resp.json())["access_token"])


@pytest.fixture
async def matrix_app(data_dir: Path, tmp_path: Path, upstream: FakeUpstream,
                     provider: OIDCProvider) -> AsyncIterator[RunningApp]:
    # A model (so sends reach the ownership check) and a sign-in provider (so its routes exist).
    running = await start_app(make_settings(
        data_dir, models_file=upstream.models_file(tmp_path), oidc_issuer=provider.url,
        oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
    ))
    yield running
    await running.stop()


async def setup_world(m: Matrix) -> tuple[Caller, Caller, Caller]:
    """A: admin of team X with a chat, messages, an API key, an invite, an agent with avatar.
    B: a member of team X. C: the admin of team Y."""
    for email in ("a@example.com", "b@example.com", "c@example.com"):
        async with m.session.post(m.app.url + "/api/auth/register",
                                  json={"email": email, "password": PASSWORD}) as resp:
            assert resp.status == 201, await resp.text()
    a, b, c = [await m.login(e) for e in ("a@example.com", "b@example.com", "c@example.com")]
    store = m.app.services.store
    c_user = await store.get_user_by_email("c@example.com")
    b_user = await store.get_user_by_email("b@example.com")
    assert c_user is not None and b_user is not None
    await store.create_team(Team(id="team-y", name="Team Y", created_at=1.0))
    await store.update_user(c_user.id, {"team_id": "team-y", "role": "admin"})

    async def as_a(method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        async with m.session.request(method, m.app.url + path, json=body, data=raw,
                                     headers={"Authorization": f"Bearer {a.token}"}) as resp:
            assert resp.status in (200, 201), await resp.text()
            return await resp.json()

    chat = await as_a("POST", "/api/chats", {"title": f"{SECRET_WORD} plans"})
    a_user = await store.get_user_by_email("a@example.com")
    assert a_user is not None
    question = Message(id=new_id(), chat_id=chat["id"], user_id=a_user.id, team_id=a_user.team_id,
                       role="user", content=f"tell me about {SECRET_WORD}", status="complete",
                       created_at=1.0, updated_at=1.0)
    answer = Message(id=new_id(), chat_id=chat["id"], user_id=a_user.id, team_id=a_user.team_id,
                     role="assistant", content="it is secret", status="complete", created_at=2.0,
                     updated_at=2.0, parent_id=question.id)
    await store.create_message(question)
    await store.create_message(answer)
    key = await as_a("POST", "/api/auth/api-keys", {"name": "a-key"})
    invite = await as_a("POST", "/api/admin/invites", {})
    agent = await as_a("POST", "/api/agents", AGENT)
    await as_a("PUT", f"/api/agents/{agent['id']}/avatar", raw=png())
    prompt = await as_a("POST", "/api/prompts", {"name": "A's", "command": "secret", "body": "b"})
    a_file = form("a.txt", f"{SECRET_WORD}\n".encode())
    headers = {"Authorization": f"Bearer {a.token}", "Content-Type": MULTIPART}
    async with m.session.post(m.app.url + "/api/files", data=a_file, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        upload = await resp.json()
    m.ids.update(chat_id=chat["id"], message_id=answer.id, key_id=key["id"], invite_id=invite["id"],
                 agent_id=agent["id"], user_id=b_user.id, prompt_id=prompt["id"],
                 file_id=upload["id"])
    return a, b, c


async def test_every_route_is_in_the_matrix(matrix_app: RunningApp) -> None:
    routes = app_routes(matrix_app)
    missing = sorted(routes - POLICIES.keys())
    stale = sorted(POLICIES.keys() - routes)
    assert not missing, f"routes without an authorization policy (add them to POLICIES): {missing}"
    assert not stale, f"policies for routes the app no longer has: {stale}"


async def test_the_app_enforces_the_matrix(matrix_app: RunningApp, http: aiohttp.ClientSession) -> None:
    m = Matrix(matrix_app, http)
    a, b, c = await setup_world(m)
    anonymous = Caller("anonymous")
    routes = sorted(app_routes(matrix_app) & POLICIES.keys())
    failures: list[str] = []

    def expect(ok: bool, what: str, method: str, template: str, got: Answer) -> None:
        if not ok:
            failures.append(f"{method} {template}: {what}, got {got.status} {got.code}")

    for method, template in routes:
        policy = POLICIES[(method, template)]
        got = await m.call(method, template, policy, anonymous)
        if policy.kind == "public":
            expect(got.status in policy.public_statuses and got.code != "unauthorized",
                   f"anonymous should get {sorted(policy.public_statuses)}", method, template, got)
        else:
            expect((got.status, got.code) == (401, "unauthorized"), "anonymous should get 401",
                   method, template, got)

    for method, template in routes:
        policy = POLICIES[(method, template)]
        if policy.kind == "owned":
            got = await m.call(method, template, policy, b)
            expect(got.status == 404, "user B on user A's object should get 404", method, template, got)
        elif policy.kind == "admin":
            got = await m.call(method, template, policy, b)
            expect((got.status, got.code) == (403, "admin_required"), "a non-admin should get 403",
                   method, template, got)
        elif policy.kind in ("team_read", "team_admin"):
            if "{agent_id}" in template:
                got = await m.call(method, template, policy, c)
                expect(got.status == 404, "team Y's admin on team X's agent should get 404",
                       method, template, got)
            got = await m.call(method, template, policy, b)
            wanted = 200 if policy.kind == "team_read" else 403
            expect(got.status == wanted, f"a member of team X should get {wanted}", method, template, got)
        elif policy.kind == "team_list":
            got = await m.call(method, template, policy, c)
            expect(got.status == 200 and got.body["items"] == [], "team Y should list no agent of team X",
                   method, template, got)

    # The owners still have everything B and C tried to change or delete, unchanged.
    for method, template in routes:
        policy = POLICIES[(method, template)]
        if method == "GET" and policy.owner_reads and policy.kind in ("owned", "admin", "team_read"):
            got = await m.call(method, template, policy, a)
            expect(got.status == 200, "the owner / admin should read it", method, template, got)
    chat = await m.call("GET", "/api/chats/{chat_id}", Policy("owned"), a)
    assert chat.body["title"] == f"{SECRET_WORD} plans"
    keys = await m.call("GET", "/api/auth/api-keys", Policy("user"), a)
    assert [k["id"] for k in keys.body["items"]] == [m.ids["key_id"]]
    invites = await m.call("GET", "/api/admin/invites", Policy("admin"), a)
    assert [i["id"] for i in invites.body["items"]] == [m.ids["invite_id"]]
    agent = await m.call("GET", "/api/agents/{agent_id}", Policy("team_read"), a)
    assert agent.body["name"] == AGENT["name"] and agent.body["webhook"]["has_token"]
    b_now = await matrix_app.services.store.get_user(m.ids["user_id"])
    assert b_now is not None and b_now.role == "user"
    assert not failures, "\n".join(failures)


async def test_search_never_returns_another_users_content(
    matrix_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    m = Matrix(matrix_app, http)
    a, b, _ = await setup_world(m)
    search = POLICIES[("GET", "/api/search")]

    async def owner_finds_it() -> bool:  # the indexer works in the background
        found = await m.call("GET", "/api/search", search, a)
        return found.status == 200 and bool(found.body["hits"])

    assert await until(owner_finds_it, timeout=10, interval=0.1), "the owner's content was never indexed"
    theirs = await m.call("GET", "/api/search", search, b)
    assert theirs.status == 200 and theirs.body["hits"] == [], theirs.body
    scoped = Policy("user", query=f"?q={SECRET_WORD}&chat_id={m.ids['chat_id']}")
    assert (await m.call("GET", "/api/search", scoped, b)).body["hits"] == []


async def test_api_keys_are_refused_outside_their_scope(
    matrix_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    m = Matrix(matrix_app, http)
    a, b, _ = await setup_world(m)
    created = await m.call("POST", "/api/auth/api-keys", Policy("user", body={"name": "ci"}), a)
    assert created.status == 201
    key = Caller("a's key", created.body["key"])
    async def ids(path: str) -> list[tuple[str, Any]]:
        items = (await m.call("GET", path, Policy("admin"), a)).body["items"]
        return [(item["id"], item.get("role")) for item in items]

    paths = ("/api/admin/invites", "/api/admin/users", "/api/auth/api-keys", "/api/agents")
    before = {path: await ids(path) for path in paths}
    # Deletions last, so every other route still finds its object.
    routes = sorted(app_routes(matrix_app) & POLICIES.keys(), key=lambda r: (r[0] == "DELETE", r))
    failures: list[str] = []
    for method, template in routes:
        policy = POLICIES[(method, template)]
        got = await m.call(method, template, policy, key)
        if policy.key:
            if got.code == "api_key_not_allowed" or got.status >= 500:
                failures.append(f"{method} {template}: a key may use it, got {got.status} {got.code}")
        elif (got.status, got.code) != (403, "api_key_not_allowed"):
            failures.append(f"{method} {template}: a key must get 403 api_key_not_allowed, "
                            f"got {got.status} {got.code}")
    assert not failures, "\n".join(failures)
    # Nothing a key tried to create or change exists: no invite (so no account invited through a
    # key), no new key, user or agent, no role change, and A's password is unchanged.
    for path, items in before.items():
        assert await ids(path) == items, path
    b_now = await matrix_app.services.store.get_user(m.ids["user_id"])
    assert b_now is not None and b_now.role == "user"
    await m.login("a@example.com")
