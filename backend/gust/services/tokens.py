"""Session tokens: short-lived access JWTs and rotating refresh tokens grouped in families.

A login starts a family. Every refresh uses up the presented token and hands out the next
one of the same family; presenting a used token again means it was copied, so the whole
family is revoked (OAuth 2.0 Security BCP, RFC 9700 section 4.14.2).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import jwt

from gust.domain.accounts import RefreshToken
from gust.domain.errors import Unauthorized
from gust.domain.ids import new_id, new_token, now
from gust.domain.models import User
from gust.ports.accounts_store import AccountsStore

log = logging.getLogger(__name__)

ISSUER = "gust"
AUDIENCE = "gust-api"
ALGORITHM = "HS256"
VERIFIED_CACHE = 10_000  # access tokens remembered after their signature was checked


def token_hash(raw: str) -> str:
    """SHA-256 of a high-entropy token: enough to store it (no salt or stretching needed)."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class Session:
    user: User
    access_token: str
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int = 0
    family_id: str | None = None


class TokenService:
    def __init__(
        self,
        store: AccountsStore,
        *,
        secret_key: str,
        access_ttl: int,
        refresh_ttl: int,
        reuse_grace: float = 10.0,
    ) -> None:
        self.store = store
        self._key = secret_key
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        # A used refresh token presented again this soon after its use is a race of the
        # holder with itself, not theft (see rotate).
        self.reuse_grace = reuse_grace
        self._verified: dict[str, dict[str, Any]] = {}

    # -- access tokens -------------------------------------------------------------
    def issue_access_token(self, user: User) -> str:
        issued = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user.id,
            "iat": issued,
            "exp": issued + self.access_ttl,
            "jti": new_token(12),
            "ver": user.token_version,
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM)

    def decode_access_token(self, token: str) -> dict[str, Any]:
        """The claims of a valid access token (algorithm pinned: no `none`, no RS/HS confusion).

        A token whose signature was verified is remembered until it expires: a client sends
        the same token with every request, and verifying it each time cost about 0.1 ms.
        Only the exact token string hits the cache; revocation is checked by the caller
        (token_version against the stored user) on every request as before.
        """
        cached = self._verified.get(token)
        if cached is not None:
            if cached["exp"] > time.time():
                return cached
            del self._verified[token]
        claims = self._verify(token)
        if len(self._verified) >= VERIFIED_CACHE:
            self._verified.clear()  # simple bound: tokens are short-lived, rebuilding is cheap
        self._verified[token] = claims
        return claims

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("access token expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid access token", code="invalid_token") from None
        return claims

    # -- refresh tokens ------------------------------------------------------------
    async def start_session(self, user: User, family_id: str | None = None) -> Session:
        """Access + refresh token for a user; a new family unless one is given (rotation)."""
        raw = new_token(32)
        created = now()
        family = family_id or new_id()
        await self.store.create_refresh_token(
            RefreshToken(
                id=new_id(),
                user_id=user.id,
                family_id=family,
                token_hash=token_hash(raw),
                created_at=created,
                expires_at=created + self.refresh_ttl,
            )
        )
        return Session(
            user=user,
            access_token=self.issue_access_token(user),
            expires_in=self.access_ttl,
            refresh_token=raw,
            refresh_expires_in=self.refresh_ttl,
            family_id=family,
        )

    async def rotate(self, raw: str) -> Session:
        """Use up a refresh token and return the next session of its family."""
        at = now()
        token, fresh = await self.store.use_refresh_token(token_hash(raw), at)
        if token is None:
            raise Unauthorized("invalid refresh token", code="invalid_refresh_token")
        if not fresh:
            raced = token.used_at is not None and at - token.used_at <= self.reuse_grace
            if token.revoked_at is None and raced and token.expires_at > at:
                # Two renewals with one token within seconds: tabs without the Web Locks API
                # (plain HTTP on a LAN address), or a reload that aborted a refresh after the
                # server rotated it and before the browser stored the new cookie. The late
                # one gets a session of the same family instead of a logout for everyone.
                user = await self.store.get_user(token.user_id)
                if user is not None and not user.disabled:
                    log.info("refresh token of user %s used again within %.0f s: renewed", token.user_id,
                             self.reuse_grace)
                    return await self.start_session(user, family_id=token.family_id)
            if token.revoked_at is None:
                # A used token came back: someone holds a copy. End every session of the family.
                await self.store.revoke_refresh_family(token.family_id, at)
                log.warning(
                    "refresh token reuse for user %s: family %s revoked", token.user_id, token.family_id
                )
                raise Unauthorized("refresh token was already used; please log in again",
                                   code="refresh_token_reused")
            raise Unauthorized("session has ended; please log in again", code="invalid_refresh_token")
        if token.expires_at <= at:
            raise Unauthorized("session has expired; please log in again", code="invalid_refresh_token")
        user = await self.store.get_user(token.user_id)
        if user is None or user.disabled:
            await self.store.revoke_refresh_family(token.family_id, at)
            raise Unauthorized("session is no longer valid", code="invalid_refresh_token")
        return await self.start_session(user, family_id=token.family_id)

    async def end_session(self, raw: str) -> None:
        """Logout: revoke the family of a refresh token (unknown tokens are ignored)."""
        found = await self.store.get_refresh_token_by_hash(token_hash(raw))
        if found is not None:
            await self.store.revoke_refresh_family(found.family_id, now())

    async def end_all_sessions(self, user_id: str) -> None:
        await self.store.revoke_user_refresh_tokens(user_id, now())
