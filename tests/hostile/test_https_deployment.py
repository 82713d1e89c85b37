"""https deployments behind a proxy: with PUBLIC_URL=https://... every cookie is `Secure` and
every answer carries HSTS, whatever scheme the proxy forwards; without TRUSTED_PROXIES the
server says at start-up that all users would share the proxy's address."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.app_server import RunningApp, ServerProcess, make_settings, start_app
from tests.support.env import free_port
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProvider
from tests.support.wait import until

PASSWORD = "correct horse 1"
WARNING = "TRUSTED_PROXIES is unset"


@pytest.fixture
async def provider() -> AsyncIterator[OIDCProvider]:
    running = await OIDCProvider().start()
    yield running
    await running.stop()


async def start(data_dir: Path, provider: OIDCProvider, **overrides: object) -> RunningApp:
    return await start_app(make_settings(data_dir, oidc_issuer=provider.url, oidc_client_id=CLIENT_ID,
                                         oidc_client_secret=CLIENT_SECRET, **overrides))


async def cookies_and_hsts(
    app: RunningApp, http: aiohttp.ClientSession
) -> tuple[list[str], list[str | None]]:
    """Every Set-Cookie of a sign-up, login, refresh and OAuth start; HSTS of several answers."""
    cookies: list[str] = []
    hsts: list[str | None] = []
    account = {"email": "a@example.com", "password": PASSWORD}
    async with http.post(app.url + "/api/auth/register", json=account) as resp:
        assert resp.status == 201
        hsts.append(resp.headers.get("Strict-Transport-Security"))
    async with http.post(app.url + "/api/auth/login", json=account) as resp:
        assert resp.status == 200
        cookies += resp.headers.getall("Set-Cookie")
        hsts.append(resp.headers.get("Strict-Transport-Security"))
    jar = {c.split("=", 1)[0]: c.split("=", 1)[1].split(";")[0] for c in cookies}
    headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()), "X-CSRF-Token": jar["gust_csrf"]}
    async with http.post(app.url + "/api/auth/refresh", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        cookies += resp.headers.getall("Set-Cookie")
    async with http.get(app.url + "/api/auth/oauth/oidc/start", allow_redirects=False) as resp:
        assert resp.status == 302
        cookies += resp.headers.getall("Set-Cookie")
    for path in ("/health", "/", "/api/no-such-route", "/api/auth/providers"):
        async with http.get(app.url + path) as resp:
            hsts.append(resp.headers.get("Strict-Transport-Security"))
    return cookies, hsts


async def test_https_public_url_makes_cookies_secure_and_sends_hsts(
    data_dir: Path, provider: OIDCProvider
) -> None:
    # The proxy terminates TLS and talks plain http to Gust; it is not in TRUSTED_PROXIES.
    app = await start(data_dir, provider, public_url="https://chat.example.com")
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            cookies, hsts = await cookies_and_hsts(app, http)
    finally:
        await app.stop()
    assert len(cookies) >= 7
    for cookie in cookies:
        assert "secure" in [part.strip().lower() for part in cookie.split(";")], cookie
    assert all(value and "max-age=" in value for value in hsts), hsts


async def test_plain_http_deployment_has_neither(data_dir: Path, provider: OIDCProvider) -> None:
    app = await start(data_dir, provider)
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
            cookies, hsts = await cookies_and_hsts(app, http)
    finally:
        await app.stop()
    assert cookies and not any("secure" in c.lower().split("; ") for c in cookies)
    assert hsts == [None] * len(hsts)


def test_only_https_without_trusted_proxies_is_warned_about(data_dir: Path) -> None:
    def warnings(**overrides: object) -> list[str]:
        return make_settings(data_dir, **overrides).deployment_warnings()

    assert any(WARNING in w for w in warnings(public_url="https://chat.example.com"))
    assert warnings(public_url="https://chat.example.com", trusted_proxies="10.0.0.0/8") == []
    assert warnings(public_url="http://localhost:8100") == []
    assert warnings() == []


async def test_the_server_warns_at_start_up(tmp_path: Path) -> None:
    server = ServerProcess.gust({"DATA_DIR": str(tmp_path / "data"), "LOCAL_MODEL": "false",
                                 "PUBLIC_URL": "https://chat.example.com"}, free_port())
    try:
        await server.wait_ready()
        assert await until(lambda: WARNING in server.log(), timeout=10), server.log()
    finally:
        server.kill()
