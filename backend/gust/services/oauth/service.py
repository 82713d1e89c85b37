"""Sign-in with OAuth 2 / OpenID Connect: authorization-code flow with state, PKCE (S256)
and nonce; accounts link by verified email only.

The flow's secrets (state, PKCE verifier, nonce) travel in a short-lived signed cookie
bound to the browser that started the flow, so any server process can finish it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt

from gust.domain.errors import GustError, NotFound
from gust.domain.ids import new_token
from gust.domain.models import User
from gust.ports.accounts_store import AccountsStore
from gust.ports.http_json import HttpJson, HttpUnavailable
from gust.services.auth import AuthService, normalise_email
from gust.services.oauth.identity import (
    ExternalIdentity,
    apple_name,
    github_identity,
    identity_from_claims,
)
from gust.services.oauth.oidc import OidcClient, SignInError
from gust.services.oauth.providers import ProviderConfig
from gust.services.secretbox import derive_key
from gust.services.tokens import Session

log = logging.getLogger(__name__)

STATE_TTL = 600  # seconds a sign-in may take at the provider
STATE_AUDIENCE = "gust-oauth-state"


def safe_next(path: str | None) -> str:
    """A local path to return to after sign-in; anything else (other hosts, `//x`) is `/`."""
    if not path or not path.startswith("/") or path.startswith(("//", "/\\")) or len(path) > 500:
        return "/"
    if any(ch in path for ch in "\r\n\t\\"):
        return "/"
    return path


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


@dataclass(slots=True)
class SignInStart:
    authorize_url: str
    state_cookie: str


@dataclass(slots=True)
class SignInDone:
    session: Session
    next_path: str
    created: bool


class OAuthService:
    def __init__(
        self,
        auth: AuthService,
        store: AccountsStore,
        http: HttpJson,
        providers: Mapping[str, ProviderConfig],
        *,
        secret_key: str,
    ) -> None:
        self.auth = auth
        self.store = store
        self.http = http
        self.providers = dict(providers)
        self.oidc = OidcClient(http)
        self._state_key = derive_key(secret_key, "oauth-state")

    def provider(self, provider_id: str) -> ProviderConfig:
        provider = self.providers.get(provider_id)
        if provider is None:
            raise NotFound("no such sign-in provider")
        return provider

    # -- start ---------------------------------------------------------------------
    async def begin(
        self, provider_id: str, redirect_uri: str, *, invite: str | None = None, next_path: str | None = None
    ) -> SignInStart:
        provider = self.provider(provider_id)
        state, verifier, nonce = new_token(24), new_token(48), new_token(24)
        params = {
            "response_type": "code",
            "client_id": provider.client_id,
            "redirect_uri": redirect_uri,
            "scope": provider.scopes,
            "state": state,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
            **provider.extra_authorize_params,
        }
        if provider.kind == "oidc":
            endpoint = (await self.oidc.discovery(provider)).authorization_endpoint
            params["nonce"] = nonce
            if provider.response_mode == "form_post":
                params["response_mode"] = "form_post"
        else:
            endpoint = provider.authorize_url or ""
        claims: dict[str, Any] = {
            "aud": STATE_AUDIENCE,
            "exp": int(time.time()) + STATE_TTL,
            "p": provider.id,
            "s": state,
            "v": verifier,
            "n": nonce,
            "r": safe_next(next_path),
        }
        if invite:
            claims["i"] = invite
        cookie = jwt.encode(claims, self._state_key, algorithm="HS256")
        separator = "&" if "?" in endpoint else "?"
        return SignInStart(authorize_url=endpoint + separator + urlencode(params), state_cookie=cookie)

    # -- callback ------------------------------------------------------------------
    def _flow(self, provider: ProviderConfig, state_cookie: str | None, state: str | None) -> dict[str, Any]:
        if not state_cookie or not state:
            raise SignInError("invalid_state", "no sign-in in progress in this browser")
        try:
            flow: dict[str, Any] = jwt.decode(
                state_cookie, self._state_key, algorithms=["HS256"], audience=STATE_AUDIENCE,
                options={"require": ["exp", "aud"]},
            )
        except jwt.PyJWTError:
            raise SignInError("invalid_state", "sign-in state is invalid or expired") from None
        if flow.get("p") != provider.id or not hmac.compare_digest(str(flow.get("s", "")), state):
            raise SignInError("invalid_state", "state does not match the sign-in of this browser")
        return flow

    async def _exchange(self, provider: ProviderConfig, url: str, code: str, redirect_uri: str,
                        verifier: str, auth_methods: tuple[str, ...]) -> dict[str, Any]:
        data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "client_id": provider.client_id, "code_verifier": verifier}
        headers: dict[str, str] = {}
        secret = provider.client_secret()
        if secret:
            if provider.kind == "github" or "client_secret_post" in auth_methods:
                data["client_secret"] = secret
            else:
                basic = base64.b64encode(f"{provider.client_id}:{secret}".encode()).decode("ascii")
                headers["Authorization"] = f"Basic {basic}"
        try:
            result = await self.http.post_form(url, data, headers=headers)
        except HttpUnavailable:
            raise SignInError("provider_unavailable", "token endpoint unreachable") from None
        body = result.body if isinstance(result.body, dict) else {}
        if result.status != 200 or "error" in body or "access_token" not in body and "id_token" not in body:
            error = body.get("error") if isinstance(body.get("error"), str) else None
            raise SignInError("token_exchange_failed", f"token endpoint answered {result.status} {error}")
        return body

    async def complete(
        self, provider_id: str, params: Mapping[str, str], state_cookie: str | None, redirect_uri: str
    ) -> SignInDone:
        """Finish a sign-in from the provider's callback parameters; SignInError when refused."""
        provider = self.provider(provider_id)
        if "error" in params:
            reason = "access_denied" if params["error"] == "access_denied" else "provider_error"
            raise SignInError(reason, f"provider returned error {params['error'][:50]!r}")
        flow = self._flow(provider, state_cookie, params.get("state"))
        code = params.get("code")
        if not code:
            raise SignInError("invalid_request", "callback without an authorization code")
        identity = await self._identity(provider, code, redirect_uri, flow, params)
        user, created = await self._account(identity, flow.get("i"))
        session = await self.auth.start_session(user)
        log.info("user %s signed in with %s", user.id, provider.id)
        return SignInDone(session=session, next_path=safe_next(flow.get("r")), created=created)

    async def _identity(self, provider: ProviderConfig, code: str, redirect_uri: str, flow: dict[str, Any],
                        params: Mapping[str, str]) -> ExternalIdentity:
        if provider.kind == "github":
            token_url = provider.token_url or ""
            tokens = await self._exchange(provider, token_url, code, redirect_uri, flow["v"], ())
            access = tokens.get("access_token")
            if not isinstance(access, str):
                raise SignInError("token_exchange_failed", "no access token from GitHub")
            return await github_identity(self.http, provider, access)
        discovery = await self.oidc.discovery(provider)
        tokens = await self._exchange(provider, discovery.token_endpoint, code, redirect_uri, flow["v"],
                                      discovery.token_auth_methods)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise SignInError("invalid_id_token", "token response has no ID token")
        claims = await self.oidc.verify_id_token(provider, discovery, id_token, flow["n"])
        access = tokens.get("access_token")
        if "email" not in claims and discovery.userinfo_endpoint and isinstance(access, str):
            info = await self.oidc.fetch_json(discovery.userinfo_endpoint, "userinfo",
                                              {"Authorization": f"Bearer {access}"})
            if str(info.get("sub")) == str(claims["sub"]):  # OIDC Core 5.3.2: must match
                claims = {**info, **claims, "email": info.get("email"),
                          "email_verified": info.get("email_verified")}
        identity = identity_from_claims(provider, claims)
        if provider.id == "apple":
            identity.name = apple_name(params.get("user")) or identity.name
        return identity

    async def _account(self, identity: ExternalIdentity, invite: str | None) -> tuple[User, bool]:
        """The linked user, the user with the same verified email (now linked), or a new one."""
        user = await self.store.get_user_by_identity(identity.provider, identity.subject)
        if user is None:
            if not identity.email_verified or not identity.email:
                raise SignInError("email_not_verified",
                                  "the provider did not confirm this email address is verified")
            try:
                email = normalise_email(identity.email)
            except GustError:
                raise SignInError("email_not_verified", "the provider's email address is not valid") from None
            link = {"provider": identity.provider, "subject": identity.subject}
            user = await self.store.get_user_by_email(email)
            if user is None:
                try:
                    created = await self.auth.create_account(email, identity.name, identity=link,
                                                             invite_token=invite)
                except GustError as exc:  # registration closed or invite required / invalid
                    raise SignInError(exc.code, exc.message) from None
                return created, True
            if not user.disabled:
                linked = await self.store.update_user(user.id, {"identities": [*user.identities, link]})
                log.info("user %s linked a %s identity by verified email", user.id, identity.provider)
                user = linked or user
        if user.disabled:
            raise SignInError("account_disabled", "this account is disabled")
        return user, False
