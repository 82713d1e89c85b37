"""Browser defences: CSRF (Origin check + double-submit token) for cookie-authenticated
unsafe requests, security headers on HTML and API responses, HSTS, CORS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api, Response
from tests.support.openapi_check import OpenAPIChecker

PASSWORD = "correct horse 1"
EVIL = "https://evil.example.com"


@pytest.fixture
async def cookie_api(app: RunningApp, cookie_http: aiohttp.ClientSession) -> Api:
    """A client signed in with cookies only, as a browser is (no Authorization header)."""
    client = Api(app.url, cookie_http, OpenAPIChecker(app.app.openapi))
    await client.post("/api/auth/register", {"email": "a@example.com", "password": PASSWORD})
    login = await client.post("/api/auth/login", {"email": "a@example.com", "password": PASSWORD})
    assert login.status == 200
    return client


def csrf(client: Api) -> str:
    return next(c.value for c in client.session.cookie_jar if c.key == "gust_csrf")


async def chats(app: RunningApp, cookie_api: Api) -> list[Any]:
    listed = await cookie_api.get("/api/chats")
    items: list[Any] = listed.json["items"]
    return items


async def test_cross_site_post_with_the_session_cookie_is_refused(app: RunningApp, cookie_api: Api) -> None:
    # Even with the right token (an attacker cannot read it, but suppose it leaked).
    leaked = {"Origin": EVIL, "X-CSRF-Token": csrf(cookie_api)}
    resp = await cookie_api.post("/api/chats", {"title": "x"}, headers=leaked)
    assert (resp.status, resp.error_code) == (403, "csrf_origin")
    resp = await cookie_api.post("/api/chats", {"title": "x"}, headers={"Referer": EVIL + "/page"})
    assert (resp.status, resp.error_code) == (403, "csrf_origin")
    resp = await cookie_api.post("/api/chats", {"title": "x"}, headers={"Origin": "null"})
    assert (resp.status, resp.error_code) == (403, "csrf_origin")
    assert await chats(app, cookie_api) == []


async def test_cookie_requests_need_the_double_submit_token(app: RunningApp, cookie_api: Api) -> None:
    same_origin = {"Origin": app.url}
    missing = await cookie_api.post("/api/chats", {"title": "x"}, headers=same_origin)
    assert (missing.status, missing.error_code) == (403, "csrf_token")
    guessed = {**same_origin, "X-CSRF-Token": "guess"}
    wrong = await cookie_api.post("/api/chats", {"title": "x"}, headers=guessed)
    assert (wrong.status, wrong.error_code) == (403, "csrf_token")
    for method in ("PATCH", "DELETE"):
        resp = await cookie_api.request(method, "/api/chats/anything", json_body={"title": "y"})
        assert (resp.status, resp.error_code) == (403, "csrf_token"), method
    logout = await cookie_api.post("/api/auth/logout")
    assert (logout.status, logout.error_code) == (403, "csrf_token")
    assert await chats(app, cookie_api) == []

    echoed = {**same_origin, "X-CSRF-Token": csrf(cookie_api)}
    ok = await cookie_api.post("/api/chats", {"title": "x"}, headers=echoed)
    assert ok.status == 201, ok.text
    # Safe methods need nothing.
    assert (await cookie_api.get("/api/chats")).status == 200


async def test_bearer_requests_need_neither(api: Api) -> None:
    user = await api.register_and_login("b@example.com")
    resp = await user.post("/api/chats", {"title": "from a program"}, headers={"Origin": EVIL})
    assert resp.status == 201, resp.text


async def test_login_from_a_foreign_page_is_refused(api: Api) -> None:
    await api.post("/api/auth/register", {"email": "a@example.com", "password": PASSWORD})
    resp = await api.post("/api/auth/login", {"email": "a@example.com", "password": PASSWORD},
                          headers={"Origin": EVIL})
    assert (resp.status, resp.error_code) == (403, "csrf_origin")
    assert "Set-Cookie" not in resp.headers


async def test_public_url_is_the_origin_when_set(data_dir: Path, http: aiohttp.ClientSession) -> None:
    app = await start_app(make_settings(data_dir, public_url="https://chat.example.com/",
                                        cors_origins="https://app.example.com"))
    try:
        api = Api(app.url, http, OpenAPIChecker(app.app.openapi))
        body = {"email": "a@example.com", "password": PASSWORD}
        first = await api.post("/api/auth/register", body, headers={"Origin": "https://chat.example.com"})
        assert first.status == 201
        for origin, status in (("https://chat.example.com:443", 200), ("https://app.example.com", 200),
                               (app.url, 403), ("http://chat.example.com", 403)):
            resp = await api.post("/api/auth/login", body, headers={"Origin": origin})
            assert resp.status == status, origin
    finally:
        await app.stop()


def assert_security_headers(resp: Response | aiohttp.ClientResponse) -> None:
    headers = resp.headers
    policy = headers["Content-Security-Policy"]
    script = next(d for d in policy.split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    assert "frame-ancestors 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


async def test_security_headers_on_html_and_api(
    app: RunningApp, api: Api, http: aiohttp.ClientSession
) -> None:
    async with http.get(app.url + "/") as html:
        assert html.status == 200 and html.headers["Content-Type"].startswith("text/html")
        assert_security_headers(html)
        assert "Strict-Transport-Security" not in html.headers  # plain http
    for resp in (await api.get("/api/auth/providers"), await api.get("/api/auth/me"),
                 await api.get("/api/no-such-route"),
                 await api.post("/api/auth/login", {"email": "x@example.com", "password": "wrong pass"})):
        assert_security_headers(resp)
        assert "Strict-Transport-Security" not in resp.headers


async def test_hsts_behind_https_from_trusted_proxies_only(
    data_dir: Path, http: aiohttp.ClientSession
) -> None:
    for trusted, expected in (("127.0.0.0/8", True), ("", False)):
        app = await start_app(make_settings(data_dir / (trusted.replace("/", "_") or "none"),
                                            trusted_proxies=trusted))
        try:
            for path in ("/", "/api/auth/providers"):
                async with http.get(app.url + path, headers={"X-Forwarded-Proto": "https"}) as resp:
                    assert ("Strict-Transport-Security" in resp.headers) is expected, (trusted, path)
                    if expected:
                        assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")
        finally:
            await app.stop()


async def test_cors_only_for_configured_origins(data_dir: Path, http: aiohttp.ClientSession) -> None:
    allowed = "https://app.example.com"
    app = await start_app(make_settings(data_dir, cors_origins=allowed))
    try:
        async with http.get(app.url + "/api/auth/providers", headers={"Origin": allowed}) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == allowed
            assert "Origin" in resp.headers["Vary"]
            assert "Access-Control-Allow-Credentials" not in resp.headers
        async with http.get(app.url + "/api/auth/providers", headers={"Origin": EVIL}) as resp:
            assert resp.status == 200 and "Access-Control-Allow-Origin" not in resp.headers

        preflight = {"Origin": allowed, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "authorization, content-type"}
        async with http.options(app.url + "/api/chats", headers=preflight) as resp:
            assert resp.status == 204
            assert resp.headers["Access-Control-Allow-Origin"] == allowed
            methods = {m.strip() for m in resp.headers["Access-Control-Allow-Methods"].split(",")}
            assert {"GET", "POST"} <= methods
            assert "authorization" in resp.headers["Access-Control-Allow-Headers"].lower()
        async with http.options(app.url + "/api/chats", headers={**preflight, "Origin": EVIL}) as resp:
            assert "Access-Control-Allow-Origin" not in resp.headers
            assert "Access-Control-Allow-Methods" not in resp.headers

        # An allowed origin may call with a bearer token from its own page.
        api = Api(app.url, http, OpenAPIChecker(app.app.openapi))
        user = await api.register_and_login("a@example.com")
        created = await user.post("/api/chats", {"title": "t"}, headers={"Origin": allowed})
        assert created.status == 201 and created.headers["Access-Control-Allow-Origin"] == allowed
    finally:
        await app.stop()
