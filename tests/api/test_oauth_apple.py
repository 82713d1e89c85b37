"""Sign in with Apple: response_mode=form_post (a cross-site POST to the callback) and a
client secret that is an ES256 JWT built from the team id, key id and private key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.oidc_provider import CLIENT_ID, Apple, OIDCProvider, sign_in


@pytest.fixture
async def provider() -> AsyncIterator[OIDCProvider]:
    running = await OIDCProvider().start()
    running.apple = Apple()
    running.user.email_verified = "true"  # Apple sends strings
    yield running
    await running.stop()


def apple_settings(provider: OIDCProvider, **overrides: Any) -> dict[str, Any]:
    assert provider.apple is not None
    values: dict[str, Any] = {
        "apple_client_id": CLIENT_ID,
        "apple_team_id": provider.apple.team_id,
        "apple_key_id": provider.apple.key_id,
        # As in a one-line .env value: newlines written as \n.
        "apple_private_key": provider.apple.private_pem.replace("\n", "\\n"),
        "apple_issuer": provider.url,
    }
    values.update(overrides)
    return values


@pytest.fixture
async def app(data_dir: Path, provider: OIDCProvider) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(data_dir, **apple_settings(provider)))
    yield running
    await running.stop()


async def me(app: RunningApp, session: aiohttp.ClientSession) -> dict[str, Any] | None:
    async with session.get(app.url + "/api/auth/me") as resp:
        return await resp.json() if resp.status == 200 else None


async def test_form_post_sign_in(
    app: RunningApp, provider: OIDCProvider, cookie_http: aiohttp.ClientSession
) -> None:
    listed = await (await cookie_http.get(app.url + "/api/auth/providers")).json()
    assert [p["id"] for p in listed["items"]] == ["apple"]

    done = await sign_in(cookie_http, app.url, "apple")
    # The provider's page posted the callback from its own origin; no CSRF refusal.
    assert "user" in done.params and set(done.params) >= {"code", "state"}
    assert (done.status, done.location, done.auth_error) == (303, "/", None)
    user = await me(app, cookie_http)
    assert user is not None
    # The email comes from the signed ID token, never from the posted `user` field.
    assert user["email"] == "ada@example.com"
    assert user["display_name"] == "Ada Apple"

    # The client secret the provider accepted was an ES256 JWT made from the team's key.
    [token_request] = provider.token_requests
    import jwt

    header = jwt.get_unverified_header(token_request["client_secret"])
    claims = jwt.decode(token_request["client_secret"], options={"verify_signature": False})
    assert header["alg"] == "ES256" and header["kid"] == "KEY1234567"
    assert claims["iss"] == "TEAM123456" and claims["sub"] == CLIENT_ID and claims["aud"] == provider.url
    assert claims["exp"] - claims["iat"] <= 600


async def test_email_verified_false_string_is_unverified(
    app: RunningApp, provider: OIDCProvider, cookie_http: aiohttp.ClientSession
) -> None:
    provider.user.email_verified = "false"
    done = await sign_in(cookie_http, app.url, "apple")
    assert done.auth_error == "email_not_verified"
    assert await me(app, cookie_http) is None


async def test_client_secret_from_another_key_is_refused(
    data_dir: Path, provider: OIDCProvider, cookie_http: aiohttp.ClientSession
) -> None:
    other = Apple()
    running = await start_app(make_settings(
        data_dir, **apple_settings(provider, apple_private_key=other.private_pem)
    ))
    try:
        done = await sign_in(cookie_http, running.url, "apple")
        assert done.auth_error == "token_exchange_failed"
    finally:
        await running.stop()


async def test_forged_form_post_without_the_state_cookie_is_refused(
    app: RunningApp, cookie_http: aiohttp.ClientSession
) -> None:
    async with cookie_http.post(app.url + "/api/auth/oauth/apple/callback",
                            data={"code": "stolen", "state": "guessed"},
                            headers={"Origin": "https://evil.example.com"}, allow_redirects=False) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == "/?auth_error=invalid_state"


async def test_state_cookie_survives_the_cross_site_post_behind_https(
    app: RunningApp, data_dir: Path, provider: OIDCProvider, cookie_http: aiohttp.ClientSession
) -> None:
    """Behind an HTTPS proxy the state cookie is SameSite=None; Secure, or browsers would not
    send it with Apple's cross-site POST."""
    running = await start_app(make_settings(data_dir / "https", trusted_proxies="127.0.0.1",
                                            **apple_settings(provider)))
    try:
        async with cookie_http.get(running.url + "/api/auth/oauth/apple/start",
                               headers={"X-Forwarded-Proto": "https"}, allow_redirects=False) as resp:
            [state] = [c for c in resp.headers.getall("Set-Cookie") if c.startswith("gust_oauth=")]
        attributes = {part.strip().lower() for part in state.split(";")}
        assert {"samesite=none", "secure", "httponly", "path=/api/auth/oauth"} <= attributes
        assert "response_mode=form_post" in resp.headers["Location"]
        assert resp.headers["Location"].count("redirect_uri=https%3A%2F%2F") == 1
    finally:
        await running.stop()
