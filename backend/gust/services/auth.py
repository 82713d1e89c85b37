"""Accounts and sessions: registration, login, access tokens."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import jwt

from gust.domain.errors import Conflict, Unauthorized, ValidationError
from gust.domain.ids import new_id, new_token, now
from gust.domain.models import Team, User
from gust.ports.store import Store
from gust.services.passwords import PasswordHasher, check_password_rules

log = logging.getLogger(__name__)

ISSUER = "gust"
AUDIENCE = "gust-api"
ALGORITHM = "HS256"
LOGIN_FAILED = "email or password is incorrect"
# Every user belongs to a team; until invites land, all join the instance's first team.
DEFAULT_TEAM_ID = "default"


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or not domain or "." not in domain or len(email) > 254 or " " in email:
        raise ValidationError("email is not a valid address", field="email")
    return email


@dataclass(slots=True)
class Session:
    user: User
    access_token: str
    expires_in: int


class AuthService:
    def __init__(self, store: Store, *, secret_key: str, access_ttl: int, bcrypt_rounds: int) -> None:
        self.store = store
        self._key = secret_key
        self.access_ttl = access_ttl
        self.hasher = PasswordHasher(bcrypt_rounds)

    # -- tokens --------------------------------------------------------------------
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

    async def authenticate(self, token: str) -> User:
        """The user an access token belongs to; Unauthorized if it is bad, expired or revoked."""
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("access token expired", code="token_expired") from None
        except jwt.PyJWTError:
            raise Unauthorized("invalid access token", code="invalid_token") from None
        user = await self.store.get_user(str(claims["sub"]))
        if user is None or user.disabled or claims.get("ver", 0) != user.token_version:
            raise Unauthorized("session is no longer valid", code="invalid_token")
        return user

    # -- accounts ------------------------------------------------------------------
    async def register(self, email: str, password: str, display_name: str | None) -> User:
        email = normalise_email(email)
        check_password_rules(password)
        password_hash = await self.hasher.hash(password)
        created = now()
        user_id = new_id()
        # The first account is the admin of the instance's team. The lock makes two
        # simultaneous first registrations agree on one admin.
        first = await self.store.count_users() == 0 and await self.store.acquire_lock(
            "bootstrap-admin", user_id, ttl=60
        )
        if await self.store.get_team(DEFAULT_TEAM_ID) is None:
            with contextlib.suppress(Conflict):  # created by a concurrent registration
                await self.store.create_team(
                    Team(id=DEFAULT_TEAM_ID, name="Default team", created_at=created)
                )
        team_id, role = DEFAULT_TEAM_ID, ("admin" if first else "user")
        user = User(
            id=user_id,
            email=email,
            display_name=(display_name or email.split("@")[0]).strip()[:100],
            role=role,  # type: ignore[arg-type]
            team_id=team_id,
            created_at=created,
            password_hash=password_hash,
        )
        await self.store.create_user(user)
        log.info("user %s registered (role %s)", user.id, role)
        return user

    async def login(self, email: str, password: str) -> Session:
        try:
            email = normalise_email(email)
        except ValidationError:
            await self.hasher.verify(password, None)
            raise Unauthorized(LOGIN_FAILED, code="login_failed") from None
        user = await self.store.get_user_by_email(email)
        ok = await self.hasher.verify(password, user.password_hash if user else None)
        if user is None or not ok or user.disabled:
            raise Unauthorized(LOGIN_FAILED, code="login_failed")
        return Session(user=user, access_token=self.issue_access_token(user), expires_in=self.access_ttl)
