"""Local accounts over HTTP: register, login (token + cookie), me, logout."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.openapi_check import OpenAPIChecker

PASSWORD = "correct horse 1"


@pytest.fixture
async def cookie_api(app: RunningApp, cookie_http: aiohttp.ClientSession) -> Api:
    """A client whose session keeps cookies (the plugin's cookie_http)."""
    return Api(app.url, cookie_http, OpenAPIChecker(app.app.openapi))


async def test_register_returns_the_user_and_first_is_admin(api: Api) -> None:
    resp = await api.post(
        "/api/auth/register", {"email": " Ann@Example.COM ", "password": PASSWORD, "display_name": "Ann"}
    )
    assert resp.status == 201, resp.text
    first = resp.json
    assert first["email"] == "ann@example.com"
    assert first["display_name"] == "Ann"
    assert first["role"] == "admin"
    assert first["id"] and first["team_id"]
    assert "password" not in resp.text and "password_hash" not in first

    resp = await api.post("/api/auth/register", {"email": "bob@example.com", "password": PASSWORD})
    assert resp.status == 201, resp.text
    assert resp.json["role"] == "user"
    assert resp.json["display_name"] == "bob"
    assert resp.json["team_id"] == first["team_id"]


async def test_register_twice_conflicts(api: Api) -> None:
    first = await api.post("/api/auth/register", {"email": "a@example.com", "password": PASSWORD})
    assert first.status == 201
    resp = await api.post("/api/auth/register", {"email": "A@example.com", "password": "another pass 2"})
    assert resp.status == 409
    assert resp.json["error"]["code"] == "email_taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-address", "password": PASSWORD}, "email"),
        ({"email": "a@example.com", "password": "short"}, "password"),
        ({"email": "a@example.com", "password": "é" * 40}, "password"),  # 80 bytes > bcrypt's 72
        ({"email": "a@example.com"}, "password"),
    ],
)
async def test_register_refuses_bad_fields(api: Api, body: dict[str, str], field: str) -> None:
    resp = await api.post("/api/auth/register", body)
    assert resp.status == 422, resp.text
    assert resp.json["error"]["code"] == "validation_error"
    assert resp.json["error"]["field"] == field


async def test_login_returns_token_and_httponly_cookie(api: Api) -> None:
    await api.post("/api/auth/register", {"email": "a@example.com", "password": PASSWORD})
    resp = await api.post("/api/auth/login", {"email": "A@Example.com", "password": PASSWORD})
    assert resp.status == 200, resp.text
    assert resp.json["token_type"] == "bearer"
    assert resp.json["expires_in"] > 0
    assert resp.json["user"]["email"] == "a@example.com"
    token = resp.json["access_token"]
    cookies = resp.headers.getall("Set-Cookie")
    [session_cookie] = [c for c in cookies if c.startswith("gust_access=")]
    assert session_cookie.startswith(f"gust_access={token};")
    attributes = [part.strip().lower() for part in session_cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes  # plain http in tests; https requests get Secure

    me = await api.as_user(token).get("/api/auth/me")
    assert me.status == 200
    assert me.json["email"] == "a@example.com"


async def test_cookie_authenticates_api_calls_until_logout(cookie_api: Api) -> None:
    await cookie_api.post("/api/auth/register", {"email": "a@example.com", "password": PASSWORD})
    assert (await cookie_api.get("/api/auth/me")).status == 401
    login = await cookie_api.post("/api/auth/login", {"email": "a@example.com", "password": PASSWORD})
    assert login.status == 200

    # No Authorization header from here on: only the cookie jar, plus the CSRF token that
    # unsafe cookie-authenticated requests echo from the JS-readable gust_csrf cookie.
    [csrf] = [c.value for c in cookie_api.session.cookie_jar if c.key == "gust_csrf"]
    cookie_api.default_headers["X-CSRF-Token"] = csrf
    me = await cookie_api.get("/api/auth/me")
    assert me.status == 200, me.text
    assert me.json["id"] == login.json["user"]["id"]
    created = await cookie_api.post("/api/chats", {"title": "via cookie"})
    assert created.status == 201, created.text
    listed = await cookie_api.get("/api/chats")
    assert [c["id"] for c in listed.json["items"]] == [created.json["id"]]

    logout = await cookie_api.post("/api/auth/logout")
    assert logout.status == 204
    assert any(c.startswith("gust_access=;") or c.startswith('gust_access="";')
               for c in logout.headers.getall("Set-Cookie"))
    after = await cookie_api.get("/api/auth/me")
    assert after.status == 401
    assert after.json["error"]["code"] == "unauthorized"


async def test_wrong_password_and_unknown_email_look_the_same(api: Api) -> None:
    await api.post("/api/auth/register", {"email": "a@example.com", "password": PASSWORD})
    wrong = await api.post("/api/auth/login", {"email": "a@example.com", "password": "wrong password"})
    unknown = await api.post("/api/auth/login", {"email": "nobody@example.com", "password": PASSWORD})
    malformed = await api.post("/api/auth/login", {"email": "not-an-email", "password": PASSWORD})
    bodies = []
    for resp in (wrong, unknown, malformed):
        assert resp.status == 401, resp.text
        assert "Set-Cookie" not in resp.headers
        error = dict(resp.json["error"])
        assert error.pop("request_id")
        bodies.append(error)
    assert bodies[0] == bodies[1] == bodies[2] == {
        "code": "login_failed",
        "message": "email or password is incorrect",
    }


async def test_me_requires_authentication(api: Api) -> None:
    resp = await api.get("/api/auth/me")
    assert resp.status == 401
    assert resp.json["error"]["code"] == "unauthorized"
    bad = await api.get("/api/auth/me", token="not-a-token")
    assert bad.status == 401
    assert bad.json["error"]["code"] == "invalid_token"
    basic = await api.get("/api/auth/me", headers={"Authorization": "Basic YTpi"})
    assert basic.status == 401
    assert basic.json["error"]["code"] == "invalid_token"


async def test_token_signed_with_another_key_is_refused(api: Api) -> None:
    import jwt

    user = await api.register_and_login("a@example.com")
    me = await user.get("/api/auth/me")
    forged = jwt.encode(
        {"iss": "gust", "aud": "gust-api", "sub": me.json["id"], "iat": 1, "exp": 4_000_000_000},
        "another-secret-key-that-is-long-enough-000000",
        algorithm="HS256",
    )
    resp = await api.get("/api/auth/me", token=forged)
    assert resp.status == 401
    assert resp.json["error"]["code"] == "invalid_token"
