"""Google and Microsoft (Entra ID, tenant configurable) against the local provider, and the
providers list with every provider configured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, Apple, OIDCProvider, sign_in

CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


async def me(app: RunningApp, session: aiohttp.ClientSession) -> dict[str, Any] | None:
    async with session.get(app.url + "/api/auth/me") as resp:
        return await resp.json() if resp.status == 200 else None


async def test_google(data_dir: Path, provider: OIDCProvider, cookie_http: aiohttp.ClientSession) -> None:
    app = await start_app(make_settings(data_dir, google_client_id=CLIENT_ID,
                                        google_client_secret=CLIENT_SECRET, google_issuer=provider.url))
    try:
        done = await sign_in(cookie_http, app.url, "google")
        assert done.auth_error is None
        assert (await me(app, cookie_http) or {}).get("email") == "ada@example.com"
    finally:
        await app.stop()


async def microsoft(data_dir: Path, provider: OIDCProvider, tenant: str) -> RunningApp:
    return await start_app(make_settings(
        data_dir, microsoft_client_id=CLIENT_ID, microsoft_client_secret=CLIENT_SECRET,
        microsoft_authority=provider.url, microsoft_tenant=tenant,
    ))


@pytest.mark.parametrize(
    ("tid", "extra", "error"),
    [
        ("tenant-a", {"xms_edov": True}, None),  # a work account whose domain the tenant owns
        (CONSUMER_TENANT, {}, None),  # a personal account: Microsoft verified the address
        ("tenant-a", {}, "email_not_verified"),  # Entra ID says nothing: not verified
    ],
)
async def test_microsoft_multi_tenant(
    data_dir: Path, provider: OIDCProvider, cookie_http: aiohttp.ClientSession,
    tid: str, extra: dict[str, Any], error: str | None,
) -> None:
    provider.switches.tenant_issuer = tid
    provider.user.email_verified = None  # Entra ID sends no email_verified
    provider.user.extra = extra
    app = await microsoft(data_dir, provider, "common")
    try:
        done = await sign_in(cookie_http, app.url, "microsoft")
        assert done.auth_error == error
        assert (await me(app, cookie_http) is None) == (error is not None)
        assert provider.issuer_prefix == "/common/v2.0"  # discovery of the configured tenant
    finally:
        await app.stop()


async def test_microsoft_token_of_another_tenant_is_refused(
    data_dir: Path, provider: OIDCProvider, cookie_http: aiohttp.ClientSession
) -> None:
    provider.switches.tenant_issuer = "tenant-a"
    provider.switches.wrong_issuer = True  # iss no longer matches the template filled with tid
    provider.user.extra = {"xms_edov": True}
    app = await microsoft(data_dir, provider, "common")
    try:
        assert (await sign_in(cookie_http, app.url, "microsoft")).auth_error == "invalid_id_token"
    finally:
        await app.stop()


async def test_microsoft_single_tenant(
    data_dir: Path, provider: OIDCProvider, cookie_http: aiohttp.ClientSession
) -> None:
    provider.user.extra = {"xms_edov": True}
    provider.user.email_verified = None
    app = await microsoft(data_dir, provider, "contoso-tenant-id")
    try:
        assert (await sign_in(cookie_http, app.url, "microsoft")).auth_error is None
        assert provider.issuer_prefix == "/contoso-tenant-id/v2.0"
    finally:
        await app.stop()


async def test_every_configured_provider_is_listed(data_dir: Path, http: aiohttp.ClientSession) -> None:
    apple = Apple()
    app = await start_app(make_settings(
        data_dir,
        google_client_id="g", google_client_secret="gs",
        microsoft_client_id="m", microsoft_client_secret="ms",
        apple_client_id="a", apple_team_id=apple.team_id, apple_key_id=apple.key_id,
        apple_private_key=apple.private_pem,
        github_client_id="h", github_client_secret="hs",
        oidc_issuer="https://sso.example.com", oidc_client_id="o",
        # Incomplete: a client id without its secret is not a configured provider.
        google_issuer="https://accounts.google.com",
    ))
    try:
        async with http.get(app.url + "/api/auth/providers") as resp:
            body = await resp.json()
        assert [p["id"] for p in body["items"]] == ["google", "microsoft", "apple", "github", "oidc"]
        assert body["registration"] == "open"
    finally:
        await app.stop()
    partial = await start_app(make_settings(data_dir / "partial", google_client_id="g",
                                            github_client_secret="hs", apple_client_id="a"))
    try:
        async with http.get(partial.url + "/api/auth/providers") as resp:
            assert (await resp.json())["items"] == []
    finally:
        await partial.stop()
