"""Sign in with GitHub (plain OAuth 2): the account email is GitHub's primary address, and
only when GitHub marks it verified (from /user/emails)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OIDCProvider, sign_in


@pytest.fixture
async def app(data_dir: Path, provider: OIDCProvider) -> AsyncIterator[RunningApp]:
    running = await start_app(make_settings(
        data_dir, github_client_id=CLIENT_ID, github_client_secret=CLIENT_SECRET,
        github_url=provider.url, github_api_url=provider.url + "/api",
    ))
    yield running
    await running.stop()


async def me(app: RunningApp, session: aiohttp.ClientSession) -> dict[str, Any] | None:
    async with session.get(app.url + "/api/auth/me") as resp:
        return await resp.json() if resp.status == 200 else None


async def test_verified_primary_email_signs_in(
    app: RunningApp, provider: OIDCProvider, cookie_http: aiohttp.ClientSession
) -> None:
    provider.github_emails = [
        {"email": "old@example.com", "primary": False, "verified": True},
        {"email": "Ada@Example.com", "primary": True, "verified": True},
    ]
    done = await sign_in(cookie_http, app.url, "github")
    assert (done.status, done.location, done.auth_error) == (302, "/", None)
    user = await me(app, cookie_http)
    assert user is not None and user["email"] == "ada@example.com" and user["display_name"] == "Ada Lovelace"
    stored = await app.services.store.get_user(user["id"])
    assert stored is not None and stored.identities == [{"provider": "github", "subject": "4242"}]
    assert provider.token_requests[0]["code_verifier"]  # PKCE with GitHub too


@pytest.mark.parametrize(
    "emails",
    [
        # The primary address is not verified; a verified secondary one does not count.
        [{"email": "ada@example.com", "primary": True, "verified": False},
         {"email": "other@example.com", "primary": False, "verified": True}],
        # No primary address at all.
        [{"email": "ada@example.com", "primary": False, "verified": True}],
        [],
    ],
)
async def test_unverified_or_missing_primary_is_refused(
    app: RunningApp, api: Api, provider: OIDCProvider, cookie_http: aiohttp.ClientSession,
    emails: list[dict[str, Any]],
) -> None:
    await api.post("/api/auth/register", {"email": "ada@example.com", "password": "correct horse 1"})
    provider.github_emails = emails
    done = await sign_in(cookie_http, app.url, "github")
    assert done.auth_error == "email_not_verified"
    assert await me(app, cookie_http) is None
    assert await app.services.store.count_users() == 1
    existing = await app.services.store.get_user_by_email("ada@example.com")
    assert existing is not None and existing.identities == []


async def test_verified_primary_links_existing_account(
    app: RunningApp, api: Api, cookie_http: aiohttp.ClientSession
) -> None:
    local = await api.post("/api/auth/register", {"email": "ada@example.com", "password": "correct horse 1"})
    assert (await sign_in(cookie_http, app.url, "github")).auth_error is None
    assert (await me(app, cookie_http) or {}).get("id") == local.json["id"]


async def test_token_error_is_refused(app: RunningApp, cookie_http: aiohttp.ClientSession) -> None:
    def wrong_code(params: dict[str, str]) -> None:
        params["code"] = "not-a-code"

    done = await sign_in(cookie_http, app.url, "github", tamper=wrong_code)
    assert done.auth_error == "token_exchange_failed"
