"""Sessions end to end over HTTP: cookies, refresh rotation and reuse detection, logout,
password change, disabling a user, password limits, access-token claims."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from yarl import URL

from gust.config import Settings
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.backends import adapter
from tests.support.client import Api, Response
from tests.support.openapi_check import OpenAPIChecker

PASSWORD = "correct horse 1"
SECRET = "test-secret-key-that-is-long-enough-0123456789"


class Browser:
    """A cookie-keeping client that echoes the CSRF cookie like the UI does."""

    def __init__(self, app: RunningApp, session: aiohttp.ClientSession) -> None:
        self.app = app
        self.session = session
        self.api = Api(app.url, session, OpenAPIChecker(app.app.openapi))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.session.cookie_jar if c.key == name), None)

    async def post(self, path: str, body: Any = None, *, csrf: bool = True) -> Response:
        headers = {"X-CSRF-Token": self.cookie("gust_csrf") or ""} if csrf else {}
        return await self.api.post(path, body, headers=headers)

    async def login(self, email: str, password: str = PASSWORD) -> Response:
        resp = await self.api.post("/api/auth/login", {"email": email, "password": password})
        assert resp.status == 200, resp.text
        return resp


@pytest.fixture
async def browsers(app: RunningApp) -> AsyncIterator[tuple[Browser, Browser]]:
    """Two browsers (cookie jars) on the same app."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as one, \
            aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as two:
        yield Browser(app, one), Browser(app, two)


async def register(api: Api, email: str, password: str = PASSWORD) -> dict[str, Any]:
    resp = await api.post("/api/auth/register", {"email": email, "password": password})
    assert resp.status == 201, resp.text
    user: dict[str, Any] = resp.json
    return user


def set_cookies(resp: Response) -> dict[str, set[str]]:
    """name -> lower-cased attributes (with `value=...`) of every Set-Cookie of a response."""
    cookies: dict[str, set[str]] = {}
    for header in resp.headers.getall("Set-Cookie", []):
        first, *rest = [part.strip() for part in header.split(";")]
        name, _, value = first.partition("=")
        cookies[name] = {p.lower() for p in rest} | {f"value={value}"}
    return cookies


async def refresh_with(api: Api, token: str | None) -> Response:
    """A refresh from a client holding only this token (an attacker's, or a replay)."""
    return await api.post("/api/auth/refresh", auth=False, headers={
        "Cookie": f"gust_refresh={token}; gust_csrf=x", "X-CSRF-Token": "x"})


def value(attributes: set[str]) -> str:
    return next(a for a in attributes if a.startswith("value="))[len("value="):]


async def test_login_sets_three_cookies_with_the_right_scopes(api: Api) -> None:
    await register(api, "a@example.com")
    resp = await api.post("/api/auth/login", {"email": "a@example.com", "password": PASSWORD})
    cookies = set_cookies(resp)
    assert {"httponly", "samesite=lax", "path=/"} <= cookies["gust_access"]
    assert {"httponly", "samesite=lax", "path=/api/auth"} <= cookies["gust_refresh"]
    assert f"max-age={7 * 24 * 3600}" in cookies["gust_refresh"]
    assert "httponly" not in cookies["gust_csrf"] and "path=/" in cookies["gust_csrf"]
    for attributes in cookies.values():
        assert "secure" not in attributes  # plain http here; see the proxy test for https
    assert value(cookies["gust_access"]) == resp.json["access_token"]
    assert value(cookies["gust_refresh"]) not in resp.text  # the refresh token is cookie-only


async def test_secure_cookies_only_behind_a_trusted_https_proxy(
    data_dir: Path, http: aiohttp.ClientSession
) -> None:
    for trusted, secure in (("127.0.0.1", True), ("10.0.0.0/8", False)):
        app = await start_app(make_settings(data_dir / trusted.replace("/", "_"), trusted_proxies=trusted))
        try:
            api = Api(app.url, http, OpenAPIChecker(app.app.openapi))
            await register(api, "a@example.com")
            resp = await api.post("/api/auth/login", {"email": "a@example.com", "password": PASSWORD},
                                  headers={"X-Forwarded-Proto": "https"})
            for name, attributes in set_cookies(resp).items():
                assert ("secure" in attributes) is secure, (trusted, name)
            assert ("Strict-Transport-Security" in resp.headers) is secure
        finally:
            await app.stop()


async def test_access_token_claims_and_pinned_algorithm(api: Api) -> None:
    await register(api, "a@example.com")
    resp = await api.post("/api/auth/login", {"email": "a@example.com", "password": PASSWORD})
    token = resp.json["access_token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="gust-api", issuer="gust")
    assert set(claims) >= {"iss", "aud", "exp", "iat", "jti", "sub"}
    assert claims["exp"] - claims["iat"] == 15 * 60 == resp.json["expires_in"]

    unsigned = jwt.encode({**claims}, None, algorithm="none")  # type: ignore[arg-type]
    no_audience = jwt.encode({k: v for k, v in claims.items() if k != "aud"}, SECRET, algorithm="HS256")
    expired = jwt.encode({**claims, "iat": 1, "exp": 2}, SECRET, algorithm="HS256")
    cases = ((unsigned, "invalid_token"), (no_audience, "invalid_token"), (expired, "token_expired"))
    for bad, code in cases:
        refused = await api.get("/api/auth/me", token=bad)
        assert (refused.status, refused.error_code) == (401, code)


async def test_refresh_rotates_the_refresh_token(browsers: tuple[Browser, Browser]) -> None:
    browser, _ = browsers
    await register(browser.api, "a@example.com")
    login = await browser.login("a@example.com")
    first = browser.cookie("gust_refresh")
    refreshed = await browser.post("/api/auth/refresh")
    assert refreshed.status == 200, refreshed.text
    second = browser.cookie("gust_refresh")
    assert first and second and first != second
    assert refreshed.json["access_token"] != login.json["access_token"]
    me = await browser.api.get("/api/auth/me", token=refreshed.json["access_token"])
    assert me.status == 200 and me.json["email"] == "a@example.com"
    digest = hashlib.sha256(second.encode()).hexdigest()
    stored = await adapter(browser.app.services.store).get_refresh_token_by_hash(digest)
    assert stored is not None and stored.token_hash != second  # stored hashed, never as is


async def test_reusing_a_rotated_refresh_token_revokes_its_family(
    browsers: tuple[Browser, Browser], http: aiohttp.ClientSession
) -> None:
    browser, other = browsers
    # Replayed at once, as a test can: without the grace a real theft has (its use comes
    # later than the holder's, see the test below).
    browser.app.services.auth.tokens.reuse_grace = 0
    await register(browser.api, "a@example.com")
    await browser.login("a@example.com")
    await other.login("a@example.com")  # another login of the same user: another family
    stolen = browser.cookie("gust_refresh")
    assert (await browser.post("/api/auth/refresh")).status == 200
    current = browser.cookie("gust_refresh")

    # The attacker replays the old token from a client of its own.
    attacker = Api(browser.app.url, http, OpenAPIChecker(browser.app.app.openapi))
    replay = await refresh_with(attacker, stolen)
    assert (replay.status, replay.error_code) == (401, "refresh_token_reused")
    # The legitimate holder's newer token died with the family...
    after = await refresh_with(attacker, current)
    assert (after.status, after.error_code) == (401, "invalid_refresh_token")
    # ...while the user's other login is untouched.
    assert (await other.post("/api/auth/refresh")).status == 200


async def test_two_renewals_with_one_token_at_once_keep_the_session(
    browsers: tuple[Browser, Browser], http: aiohttp.ClientSession
) -> None:
    """Two tabs without Web Locks, or a reload that lost the renewed cookie: the same token
    comes twice within seconds. Both renewals work; the family lives on."""
    browser, _ = browsers
    await register(browser.api, "a@example.com")
    await browser.login("a@example.com")
    token = browser.cookie("gust_refresh")
    tab = Api(browser.app.url, http, OpenAPIChecker(browser.app.app.openapi))
    first, second = await refresh_with(tab, token), await refresh_with(tab, token)
    assert (first.status, second.status) == (200, 200), second.text
    renewed = [value(set_cookies(r)["gust_refresh"]) for r in (first, second)]
    assert len({token, *renewed}) == 3  # two new tokens, each of the same family
    for fresh in renewed:
        assert (await refresh_with(tab, fresh)).status == 200
    # Outside the grace, the same replay is theft: the family ends.
    browser.app.services.auth.tokens.reuse_grace = 0
    late = await refresh_with(tab, token)
    assert (late.status, late.error_code) == (401, "refresh_token_reused")


async def test_refresh_requires_the_csrf_header_and_a_cookie(browsers: tuple[Browser, Browser]) -> None:
    browser, _ = browsers
    await register(browser.api, "a@example.com")
    await browser.login("a@example.com")
    missing = await browser.post("/api/auth/refresh", csrf=False)
    assert (missing.status, missing.error_code) == (403, "csrf_token")
    browser.session.cookie_jar.clear()
    none = await browser.post("/api/auth/refresh")
    assert (none.status, none.error_code) == (401, "invalid_refresh_token")


async def test_logout_revokes_the_family(browsers: tuple[Browser, Browser], api: Api) -> None:
    browser, _ = browsers
    await register(browser.api, "a@example.com")
    await browser.login("a@example.com")
    refresh = browser.cookie("gust_refresh")
    out = await browser.post("/api/auth/logout")
    assert out.status == 204
    cleared = set_cookies(out)
    assert {"gust_access", "gust_refresh", "gust_csrf"} <= set(cleared)
    assert "path=/api/auth" in cleared["gust_refresh"]
    assert browser.cookie("gust_refresh") is None
    replay = await refresh_with(api, refresh)
    assert (replay.status, replay.error_code) == (401, "invalid_refresh_token")


async def test_password_change_ends_every_session(browsers: tuple[Browser, Browser], api: Api) -> None:
    mine, other = browsers
    await register(api, "a@example.com")
    old_login = await mine.login("a@example.com")
    other_login = await other.login("a@example.com")

    wrong = await mine.post("/api/auth/password", {"current_password": "not it at all",
                                                   "new_password": "a brand new pass"})
    assert (wrong.status, wrong.error_code) == (403, "wrong_password")
    weak = await mine.post("/api/auth/password", {"current_password": PASSWORD, "new_password": "short"})
    assert (weak.status, weak.error_code) == (422, "validation_error")

    changed = await mine.post("/api/auth/password", {"current_password": PASSWORD,
                                                     "new_password": "a brand new pass"})
    assert changed.status == 200, changed.text
    # Every earlier access token and refresh token of the user is dead, in both browsers.
    for token in (old_login.json["access_token"], other_login.json["access_token"]):
        assert (await api.get("/api/auth/me", token=token)).status == 401
    assert (await other.post("/api/auth/refresh")).status == 401
    # The browser that changed it carries on with its new session.
    assert (await api.get("/api/auth/me", token=changed.json["access_token"])).status == 200
    assert (await mine.post("/api/auth/refresh")).status == 200
    old = await api.post("/api/auth/login", {"email": "a@example.com", "password": PASSWORD})
    assert old.status == 401
    assert (await api.post("/api/auth/login", {"email": "a@example.com",
                                               "password": "a brand new pass"})).status == 200


async def test_disabled_user_is_locked_out_at_once(browsers: tuple[Browser, Browser], api: Api) -> None:
    admin = await api.register_and_login("admin@example.com")
    victim, _ = browsers
    user = await register(api, "b@example.com")
    login = await victim.login("b@example.com")
    key = await api.as_user(login.json["access_token"]).post("/api/auth/api-keys", {"name": "cli"})
    assert key.status == 201

    off = await admin.patch(f"/api/admin/users/{user['id']}", {"disabled": True})
    assert off.status == 200 and off.json["disabled"] is True
    for token in (login.json["access_token"], key.json["key"]):
        refused = await api.get("/api/auth/me", token=token)
        assert refused.status == 401, token[:5]
    assert (await victim.post("/api/auth/refresh")).status == 401
    relogin = await api.post("/api/auth/login", {"email": "b@example.com", "password": PASSWORD})
    assert (relogin.status, relogin.error_code) == (401, "login_failed")

    on = await admin.patch(f"/api/admin/users/{user['id']}", {"disabled": False})
    assert on.status == 200 and on.json["disabled"] is False
    assert (await api.post("/api/auth/login", {"email": "b@example.com", "password": PASSWORD})).status == 200
    assert (await api.get("/api/auth/me", token=key.json["key"])).status == 200  # keys work again


@pytest.mark.parametrize(
    "password",
    ["x" * 100, "é" * 73, "€" * 25, "a" * 129],  # 100 bytes; 146 bytes; 75 bytes; 129 characters
)
async def test_long_passwords_get_a_defined_answer(api: Api, password: str) -> None:
    resp = await api.post("/api/auth/register", {"email": "a@example.com", "password": password})
    assert (resp.status, resp.error_code) == (422, "validation_error")
    assert resp.json["error"]["field"] == "password"
    await register(api, "b@example.com")
    login = await api.post("/api/auth/login", {"email": "b@example.com", "password": password})
    assert (login.status, login.error_code) == (401, "login_failed")


async def test_72_byte_password_is_accepted(api: Api) -> None:
    await register(api, "a@example.com", "é" * 36)  # exactly 72 bytes
    login = await api.post("/api/auth/login", {"email": "a@example.com", "password": "é" * 36})
    assert login.status == 200
    assert (await api.post("/api/auth/login", {"email": "a@example.com", "password": "é" * 35})).status == 401


async def test_default_bcrypt_cost_is_12(data_dir: Path, http: aiohttp.ClientSession) -> None:
    default = Settings.model_fields["bcrypt_rounds"].default
    app = await start_app(make_settings(data_dir, bcrypt_rounds=default))
    try:
        api = Api(app.url, http, OpenAPIChecker(app.app.openapi))
        user = await register(api, "a@example.com")
        stored = await app.services.store.get_user(user["id"])
        assert stored is not None and stored.password_hash is not None
        assert stored.password_hash.startswith("$2b$12$")
        login = await api.post("/api/auth/login", {"email": "a@example.com", "password": PASSWORD})
        assert login.status == 200
    finally:
        await app.stop()


async def test_a_stale_session_cookie_does_not_block_login_or_refresh(
    browsers: tuple[Browser, Browser], api: Api
) -> None:
    """After a password change elsewhere, this browser's access cookie is revoked: protected
    calls answer 401, but logging in again works."""
    mine, other = browsers
    await register(api, "a@example.com")
    await mine.login("a@example.com")
    await other.login("a@example.com")
    changed = await other.post("/api/auth/password", {"current_password": PASSWORD,
                                                      "new_password": "a brand new pass"})
    assert changed.status == 200
    assert mine.cookie("gust_access") is not None
    assert (await mine.api.get("/api/auth/me")).status == 401
    await mine.login("a@example.com", "a brand new pass")  # with the stale cookie still sent
    assert (await mine.api.get("/api/auth/me")).status == 200

    # A broken access cookie does not stop a refresh either.
    mine.session.cookie_jar.update_cookies({"gust_access": "garbage"}, response_url=URL(mine.app.url))
    assert mine.cookie("gust_access") == "garbage"
    assert (await mine.post("/api/auth/refresh")).status == 200
    assert (await mine.api.get("/api/auth/me")).status == 200
