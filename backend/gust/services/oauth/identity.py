"""Who signed in: identities from ID-token claims (OpenID Connect) or from GitHub's API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gust.domain.errors import BadRequest
from gust.domain.json_input import parse_json
from gust.ports.http_json import HttpJson, HttpUnavailable
from gust.services.oauth.oidc import SignInError
from gust.services.oauth.providers import MICROSOFT_CONSUMER_TENANT, ProviderConfig


@dataclass(slots=True)
class ExternalIdentity:
    provider: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None


def _true(value: Any) -> bool:
    # Apple sends "true"/"false" strings where others send booleans.
    return value is True or (isinstance(value, str) and value.lower() == "true")


def identity_from_claims(provider: ProviderConfig, claims: dict[str, Any]) -> ExternalIdentity:
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    verified = _true(claims.get("email_verified"))
    if provider.email_rule == "microsoft" and not verified:
        # Entra ID does not send email_verified. An address is trusted when the tenant owns
        # its domain (xms_edov) or it is a personal account, whose address Microsoft verified.
        verified = _true(claims.get("xms_edov")) or claims.get("tid") == MICROSOFT_CONSUMER_TENANT
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    return ExternalIdentity(provider=provider.id, subject=str(claims["sub"]), email=email,
                            email_verified=verified and email is not None, name=name)


def apple_name(user_field: str | None) -> str | None:
    """The name Apple posts (first sign-in only) in the `user` form field; its email is not
    used: only the signed ID token's is."""
    if not user_field:
        return None
    try:
        data = parse_json(user_field, what="the user field")
        name = data.get("name") or {}
        full = " ".join(p for p in (name.get("firstName"), name.get("lastName")) if isinstance(p, str) and p)
    except (BadRequest, AttributeError):  # not JSON, too deep, or not the shape Apple sends
        return None
    return full or None


async def github_identity(http: HttpJson, provider: ProviderConfig, access_token: str) -> ExternalIdentity:
    """GitHub's user id, and its primary email only when GitHub marks it verified."""
    headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/vnd.github+json",
               "X-GitHub-Api-Version": "2022-11-28"}
    try:
        user = await http.get_json(f"{provider.api_url}/user", headers=headers)
        emails = await http.get_json(f"{provider.api_url}/user/emails", headers=headers)
    except HttpUnavailable:
        raise SignInError("provider_unavailable", "GitHub API unreachable") from None
    if user.status != 200 or not isinstance(user.body, dict) or "id" not in user.body:
        raise SignInError("provider_error", f"GitHub /user answered {user.status}")
    if emails.status != 200 or not isinstance(emails.body, list):
        raise SignInError("provider_error", f"GitHub /user/emails answered {emails.status}")
    primary = next((e for e in emails.body if isinstance(e, dict) and e.get("primary") is True), None)
    email = primary.get("email") if primary and isinstance(primary.get("email"), str) else None
    verified = bool(primary and primary.get("verified") is True and email)
    name = user.body.get("name") or user.body.get("login")
    return ExternalIdentity(provider="github", subject=str(user.body["id"]), email=email,
                            email_verified=verified, name=name if isinstance(name, str) else None)
