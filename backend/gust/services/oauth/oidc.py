"""OpenID Connect: discovery documents, JWKS and ID-token verification (signature against
the provider's keys, iss, aud, exp, iat, nonce)."""

from __future__ import annotations

import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt import PyJWK, PyJWKSet

from gust.domain.errors import UpstreamError
from gust.ports.http_json import HttpJson, HttpUnavailable
from gust.services.oauth.providers import ProviderConfig

log = logging.getLogger(__name__)

DISCOVERY_TTL = 3600.0
JWKS_TTL = 3600.0
JWKS_MIN_REFRESH = 30.0  # an unknown key id refetches the keys, at most this often
LEEWAY = 30  # seconds of clock skew tolerated on exp / iat
# Asymmetric algorithms only: a provider's ID token is never checked with a shared secret.
ALLOWED_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)


class SignInError(Exception):
    """A sign-in that must be refused; `code` is shown to the user (no provider details)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(slots=True)
class Discovery:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    token_auth_methods: tuple[str, ...]
    algorithms: tuple[str, ...]


class OidcClient:
    def __init__(self, http: HttpJson) -> None:
        self.http = http
        self._discovery: dict[str, tuple[float, Discovery]] = {}
        self._jwks: dict[str, tuple[float, PyJWKSet]] = {}  # uri -> (fetched at, keys)

    async def fetch_json(self, url: str, what: str, headers: dict[str, str] | None = None) -> Any:
        try:
            result = await self.http.get_json(url, headers=headers)
        except HttpUnavailable as exc:
            raise UpstreamError(f"sign-in provider unreachable ({what})", code="provider_unavailable",
                                retryable=True) from exc
        if result.status != 200 or not isinstance(result.body, dict):
            raise UpstreamError(f"sign-in provider answered {result.status} for its {what}",
                                code="provider_error", upstream_status=result.status)
        return result.body

    async def discovery(self, provider: ProviderConfig) -> Discovery:
        if provider.issuer is None:
            raise RuntimeError(f"provider {provider.id} has no issuer")
        cached = self._discovery.get(provider.issuer)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        doc = await self.fetch_json(provider.issuer + "/.well-known/openid-configuration", "discovery")
        try:
            found = Discovery(
                issuer=str(doc["issuer"]).rstrip("/"),
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                jwks_uri=str(doc["jwks_uri"]),
                userinfo_endpoint=doc.get("userinfo_endpoint"),
                token_auth_methods=tuple(doc.get("token_endpoint_auth_methods_supported") or
                                         ("client_secret_basic",)),
                algorithms=tuple(a for a in doc.get("id_token_signing_alg_values_supported") or ("RS256",)
                                 if a in ALLOWED_ALGORITHMS),
            )
        except (KeyError, TypeError) as exc:
            raise UpstreamError("sign-in provider's discovery document is incomplete",
                                code="provider_error") from exc
        # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer asked for.
        if not provider.tenant_issuer and found.issuer != provider.issuer:
            raise UpstreamError("sign-in provider's discovery names another issuer", code="provider_error")
        self._discovery[provider.issuer] = (time.monotonic() + DISCOVERY_TTL, found)
        return found

    async def _keys(self, jwks_uri: str, *, refresh: bool) -> PyJWKSet:
        cached = self._jwks.get(jwks_uri)
        age = time.monotonic() - cached[0] if cached else None
        if cached is not None and age is not None and (
            (not refresh and age < JWKS_TTL) or (refresh and age < JWKS_MIN_REFRESH)
        ):
            return cached[1]
        doc = await self.fetch_json(jwks_uri, "keys")
        try:
            keys = PyJWKSet.from_dict(doc)
        except jwt.PyJWTError as exc:
            raise UpstreamError("sign-in provider's keys are unusable", code="provider_error") from exc
        self._jwks[jwks_uri] = (time.monotonic(), keys)
        return keys

    async def _signing_key(self, jwks_uri: str, kid: str | None) -> PyJWK:
        # A key id we do not know may be a rotation: fetch the keys again (rate-limited).
        for refresh in (False, True):
            for key in (await self._keys(jwks_uri, refresh=refresh)).keys:
                if (kid is None or key.key_id == kid) and key.public_key_use in (None, "sig"):
                    return key
        raise SignInError("invalid_id_token", "ID token signed with a key the provider does not publish")

    async def verify_id_token(
        self, provider: ProviderConfig, discovery: Discovery, id_token: str, nonce: str
    ) -> dict[str, Any]:
        """Claims of a valid ID token; SignInError for any failed check."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise SignInError("invalid_id_token", "ID token is malformed") from None
        algorithm = header.get("alg")
        if algorithm not in discovery.algorithms:
            raise SignInError("invalid_id_token", f"ID token algorithm {algorithm!r} not allowed")
        key = await self._signing_key(discovery.jwks_uri, header.get("kid"))
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key=key.key,
                algorithms=[algorithm],
                audience=provider.client_id,
                leeway=LEEWAY,
                options={"require": ["iss", "aud", "exp", "iat", "sub"], "verify_iss": False},
            )
        except jwt.ExpiredSignatureError:
            raise SignInError("id_token_expired", "ID token has expired") from None
        except jwt.InvalidAudienceError:
            raise SignInError("invalid_id_token", "ID token is for another client") from None
        except jwt.PyJWTError as exc:
            raise SignInError("invalid_id_token", f"ID token rejected: {type(exc).__name__}") from None
        if str(claims["iss"]).rstrip("/") not in self.expected_issuers(provider, discovery, claims):
            raise SignInError("invalid_id_token", "ID token is from another issuer")
        azp = claims.get("azp")
        if isinstance(claims["aud"], list) and len(claims["aud"]) > 1 and azp != provider.client_id:
            raise SignInError("invalid_id_token", "ID token is for several clients but not authorised to us")
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise SignInError("invalid_nonce", "ID token nonce does not match this sign-in")
        return claims

    @staticmethod
    def expected_issuers(provider: ProviderConfig, discovery: Discovery, claims: dict[str, Any]) -> set[str]:
        issuers = {discovery.issuer, *(a.rstrip("/") for a in provider.issuer_aliases)}
        if provider.tenant_issuer:
            # Multi-tenant Microsoft: the discovery issuer holds "{tenantid}"; the token names
            # its tenant in `tid`, and the two must agree.
            tid = claims.get("tid")
            issuers = {discovery.issuer.replace("{tenantid}", tid)} if isinstance(tid, str) and tid else set()
        return issuers
