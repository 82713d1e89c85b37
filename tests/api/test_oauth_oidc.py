"""Sign-in with a generic OpenID Connect provider (OIDC_ISSUER), end to end against a real
local provider: discovery, authorize (state, PKCE S256, nonce), token, JWKS, userinfo."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProvider, sign_in
from tests.support.openapi_check import OpenAPIChecker

PASSWORD = "correct horse 1"


async def oidc_app(data_dir: Path, provider: OIDCProvider, **overrides: Any) -> RunningApp:
    return await start_app(make_settings(
        data_dir, oidc_issuer=provider.url, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET,
        oidc_name="Test SSO", **overrides,
    ))


@pytest.fixture
async def app(data_dir: Path, provider: OIDCProvider) -> AsyncIterator[RunningApp]:
    running = await oidc_app(data_dir, provider)
    yield running
    await running.stop()


def cookie(session: aiohttp.ClientSession, name: str) -> str | None:
    return next((c.value for c in session.cookie_jar if c.key == name), None)


async def me(app: RunningApp, session: aiohttp.ClientSession) -> dict[str, Any] | None:
    async with session.get(app.url + "/api/auth/me") as resp:
        return await resp.json() if resp.status == 200 else None


async def test_providers_lists_only_configured_ones(app: RunningApp, api: Api, data_dir: Path) -> None:
    listed = await api.get("/api/auth/providers")
    assert listed.status == 200
    assert listed.json["items"] == [
        {"id": "oidc", "name": "Test SSO", "start_url": "/api/auth/oauth/oidc/start"}
    ]
    assert listed.json["password"] is True
    unknown = await api.get("/api/auth/oauth/google/start")
    assert unknown.status == 404

    bare = await start_app(make_settings(data_dir / "bare"))
    try:
        async with aiohttp.ClientSession() as http:
            plain = Api(bare.url, http, OpenAPIChecker(bare.app.openapi))
            assert (await plain.get("/api/auth/providers")).json["items"] == []
    finally:
        await bare.stop()


async def test_sign_in_creates_an_account_and_a_session(
    app: RunningApp, provider: OIDCProvider, cookie_http: aiohttp.ClientSession
) -> None:
    done = await sign_in(cookie_http, app.url, "oidc")
    assert (done.status, done.location, done.auth_error) == (302, "/", None)
    user = await me(app, cookie_http)
    assert user is not None
    assert (user["email"], user["display_name"], user["role"]) == ("ada@example.com", "Ada Lovelace", "admin")
    assert cookie(cookie_http, "gust_refresh") and cookie(cookie_http, "gust_csrf")
    assert cookie(cookie_http, "gust_oauth") is None  # the flow's state cookie is spent

    # The provider saw PKCE S256 (it refuses anything else) and a client secret.
    [token_request] = provider.token_requests
    assert token_request["code_verifier"] and token_request["redirect_uri"].endswith("/oauth/oidc/callback")

    # Signing in again finds the same account through the linked identity.
    cookie_http.cookie_jar.clear()
    again = await sign_in(cookie_http, app.url, "oidc")
    assert again.auth_error is None
    assert (await me(app, cookie_http) or {}).get("id") == user["id"]
    assert await app.services.store.count_users() == 1


async def test_next_path_is_kept_and_foreign_targets_are_ignored(
    app: RunningApp, cookie_http: aiohttp.ClientSession
) -> None:
    assert (await sign_in(cookie_http, app.url, "oidc", query="?next=/c/abc")).location == "/c/abc"
    for target in ("//evil.example.com/x", "https://evil.example.com/", "/\\evil.example.com"):
        cookie_http.cookie_jar.clear()
        done = await sign_in(cookie_http, app.url, "oidc", query="?" + urlencode({"next": target}))
        assert done.location == "/", target


async def test_verified_email_links_an_existing_account(
    app: RunningApp, api: Api, cookie_http: aiohttp.ClientSession
) -> None:
    local = await api.post("/api/auth/register", {"email": "Ada@Example.com", "password": PASSWORD})
    done = await sign_in(cookie_http, app.url, "oidc")
    assert done.auth_error is None
    assert (await me(app, cookie_http) or {}).get("id") == local.json["id"]
    linked = await app.services.store.get_user(local.json["id"])
    assert linked is not None and linked.identities == [{"provider": "oidc", "subject": "user-1"}]


@pytest.mark.parametrize("verified", [False, "false", None])
async def test_unverified_email_never_links_nor_creates(
    app: RunningApp, api: Api, provider: OIDCProvider, cookie_http: aiohttp.ClientSession, verified: Any
) -> None:
    local = await api.post("/api/auth/register", {"email": "ada@example.com", "password": PASSWORD})
    provider.user.email_verified = verified
    done = await sign_in(cookie_http, app.url, "oidc")
    assert done.auth_error == "email_not_verified"
    assert await me(app, cookie_http) is None and cookie(cookie_http, "gust_access") is None
    untouched = await app.services.store.get_user(local.json["id"])
    assert untouched is not None and untouched.identities == []

    provider.user.email = "someone-new@example.com"  # nor does it create an account
    cookie_http.cookie_jar.clear()
    assert (await sign_in(cookie_http, app.url, "oidc")).auth_error == "email_not_verified"
    assert await app.services.store.count_users() == 1


async def test_bad_state_is_refused(app: RunningApp, cookie_http: aiohttp.ClientSession) -> None:
    def wrong_state(params: dict[str, str]) -> None:
        params["state"] = "forged-" + params["state"]

    assert (await sign_in(cookie_http, app.url, "oidc", tamper=wrong_state)).auth_error == "invalid_state"
    assert await me(app, cookie_http) is None


async def test_callback_from_another_browser_is_refused(
    app: RunningApp, cookie_http: aiohttp.ClientSession
) -> None:
    """A code and state handed to someone else's browser (login CSRF) lack its state cookie."""
    def drop_cookies(params: dict[str, str]) -> None:
        cookie_http.cookie_jar.clear()

    assert (await sign_in(cookie_http, app.url, "oidc", tamper=drop_cookies)).auth_error == "invalid_state"


async def test_a_callback_cannot_be_replayed(app: RunningApp, cookie_http: aiohttp.ClientSession) -> None:
    done = await sign_in(cookie_http, app.url, "oidc")
    assert done.auth_error is None
    async with cookie_http.get(app.url + "/api/auth/oauth/oidc/callback", params=done.params,
                           allow_redirects=False) as replay:
        assert replay.status == 302
        assert "auth_error=invalid_state" in replay.headers["Location"]


@pytest.mark.parametrize(
    ("switch", "error"),
    [
        ("bad_nonce", "invalid_nonce"),
        ("wrong_audience", "invalid_id_token"),
        ("expired", "id_token_expired"),
        ("foreign_key", "invalid_id_token"),
        ("hs256", "invalid_id_token"),
        ("wrong_issuer", "invalid_id_token"),
        ("deny", "access_denied"),
    ],
)
async def test_bad_id_tokens_are_refused(
    app: RunningApp, provider: OIDCProvider, cookie_http: aiohttp.ClientSession, switch: str, error: str
) -> None:
    setattr(provider.switches, switch, True)
    done = await sign_in(cookie_http, app.url, "oidc")
    assert done.auth_error == error
    assert await me(app, cookie_http) is None
    assert await app.services.store.count_users() == 0


async def test_email_from_userinfo_when_the_id_token_has_none(
    app: RunningApp, provider: OIDCProvider, cookie_http: aiohttp.ClientSession
) -> None:
    provider.switches.email_in_userinfo_only = True
    assert (await sign_in(cookie_http, app.url, "oidc")).auth_error is None
    assert (await me(app, cookie_http) or {}).get("email") == "ada@example.com"


async def test_invite_mode_needs_an_invite_for_new_accounts(
    data_dir: Path, provider: OIDCProvider, cookie_http: aiohttp.ClientSession, http: aiohttp.ClientSession
) -> None:
    running = await oidc_app(data_dir, provider, registration="invite")
    try:
        api = Api(running.url, http, OpenAPIChecker(running.app.openapi))
        admin = await api.register_and_login("admin@example.com")  # the first account needs no invite
        admin_user = await admin.get("/api/auth/me")

        refused = await sign_in(cookie_http, running.url, "oidc")
        assert refused.auth_error == "invite_required"

        invite = await admin.post("/api/admin/invites", {"role": "user"})
        assert invite.status == 201, invite.text
        cookie_http.cookie_jar.clear()
        joined = await sign_in(cookie_http, running.url, "oidc", query=f"?invite={invite.json['token']}")
        assert joined.auth_error is None
        user = await me(running, cookie_http)
        assert user is not None and user["team_id"] == admin_user.json["team_id"] and user["role"] == "user"
    finally:
        await running.stop()


async def test_disabled_account_cannot_sign_in(
    app: RunningApp, cookie_http: aiohttp.ClientSession
) -> None:
    assert (await sign_in(cookie_http, app.url, "oidc")).auth_error is None
    user = await me(app, cookie_http)
    assert user is not None
    await app.services.store.update_user(user["id"], {"disabled": True})
    cookie_http.cookie_jar.clear()
    assert (await sign_in(cookie_http, app.url, "oidc")).auth_error == "account_disabled"
