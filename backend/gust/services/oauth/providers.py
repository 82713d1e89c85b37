"""Sign-in providers built from the settings: only the configured ones exist."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import jwt

from gust.config import Settings

ProviderKind = Literal["oidc", "github"]
EmailRule = Literal["standard", "microsoft"]

# Personal Microsoft accounts sign in through this tenant; Microsoft verifies their email.
MICROSOFT_CONSUMER_TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"
APPLE_SECRET_TTL = 300  # seconds; Apple accepts up to six months, a fresh one per exchange is safer


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    id: str
    name: str
    kind: ProviderKind
    client_id: str
    client_secret: Callable[[], str | None]
    scopes: str
    # OpenID Connect: the issuer whose discovery document names every endpoint.
    issuer: str | None = None
    # Issuers that may appear in ID tokens besides `issuer` (Google's scheme-less form).
    issuer_aliases: tuple[str, ...] = ()
    # Microsoft's multi-tenant issuer is a template: "{tenantid}" filled from the `tid` claim.
    tenant_issuer: bool = False
    response_mode: Literal["query", "form_post"] = "query"
    email_rule: EmailRule = "standard"
    extra_authorize_params: dict[str, str] = field(default_factory=dict)
    # GitHub (plain OAuth 2): endpoints given directly.
    authorize_url: str | None = None
    token_url: str | None = None
    api_url: str | None = None


def _static(value: str | None) -> Callable[[], str | None]:
    return lambda: value


def apple_client_secret(
    *, team_id: str, key_id: str, client_id: str, private_key: str, audience: str
) -> Callable[[], str]:
    """Apple's client secret: an ES256 JWT signed with the team's private key, made per use."""

    def make() -> str:
        issued = int(time.time())
        claims = {"iss": team_id, "iat": issued, "exp": issued + APPLE_SECRET_TTL, "aud": audience,
                  "sub": client_id}
        return jwt.encode(claims, private_key, algorithm="ES256", headers={"kid": key_id})

    return make


def _apple_key(settings: Settings) -> str | None:
    if settings.apple_private_key:
        return settings.apple_private_key.replace("\\n", "\n")  # one-line .env values
    if settings.apple_private_key_file:
        return settings.apple_private_key_file.read_text()
    return None


def build_providers(settings: Settings) -> dict[str, ProviderConfig]:
    providers: dict[str, ProviderConfig] = {}
    if settings.google_client_id and settings.google_client_secret:
        issuer = settings.google_issuer.rstrip("/")
        providers["google"] = ProviderConfig(
            id="google", name="Google", kind="oidc", client_id=settings.google_client_id,
            client_secret=_static(settings.google_client_secret), scopes="openid email profile",
            issuer=issuer, issuer_aliases=(issuer.removeprefix("https://"),),
        )
    if settings.microsoft_client_id and settings.microsoft_client_secret:
        tenant = settings.microsoft_tenant
        providers["microsoft"] = ProviderConfig(
            id="microsoft", name="Microsoft", kind="oidc", client_id=settings.microsoft_client_id,
            client_secret=_static(settings.microsoft_client_secret), scopes="openid email profile",
            issuer=f"{settings.microsoft_authority.rstrip('/')}/{tenant}/v2.0",
            tenant_issuer=tenant in ("common", "organizations", "consumers"),
            email_rule="microsoft",
        )
    apple_key = _apple_key(settings)
    if settings.apple_client_id and (
        (apple_key and settings.apple_team_id and settings.apple_key_id) or settings.apple_client_secret
    ):
        issuer = settings.apple_issuer.rstrip("/")
        secret: Callable[[], str | None] = _static(settings.apple_client_secret)
        if apple_key and settings.apple_team_id and settings.apple_key_id:
            secret = apple_client_secret(
                team_id=settings.apple_team_id, key_id=settings.apple_key_id,
                client_id=settings.apple_client_id, private_key=apple_key, audience=issuer,
            )
        providers["apple"] = ProviderConfig(
            id="apple", name="Apple", kind="oidc", client_id=settings.apple_client_id,
            client_secret=secret, scopes="name email", issuer=issuer, response_mode="form_post",
        )
    if settings.github_client_id and settings.github_client_secret:
        web, api = settings.github_url.rstrip("/"), settings.github_api_url.rstrip("/")
        providers["github"] = ProviderConfig(
            id="github", name="GitHub", kind="github", client_id=settings.github_client_id,
            client_secret=_static(settings.github_client_secret), scopes="read:user user:email",
            authorize_url=f"{web}/login/oauth/authorize", token_url=f"{web}/login/oauth/access_token",
            api_url=api,
        )
    if settings.oidc_issuer and settings.oidc_client_id:
        providers["oidc"] = ProviderConfig(
            id="oidc", name=settings.oidc_name, kind="oidc", client_id=settings.oidc_client_id,
            client_secret=_static(settings.oidc_client_secret), scopes=settings.oidc_scopes,
            issuer=settings.oidc_issuer.rstrip("/"),
        )
    return providers
