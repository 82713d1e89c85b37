"""Accounts and sessions: registration (open, invite or closed), login, refresh, logout,
password change, and authentication of access tokens and API keys."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Literal

from gust.domain.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationError
from gust.domain.ids import new_id, now
from gust.domain.models import Team, User, UserRole
from gust.ports.accounts_store import AccountsStore
from gust.services.passwords import PasswordHasher, check_password_rules
from gust.services.ratelimit import (
    LOGIN_ACCOUNT,
    LOGIN_ACCOUNT_IP,
    LOGIN_IP,
    PASSWORD_CHANGE,
    REGISTER_ACCOUNT,
    REGISTER_IP,
    RateLimitService,
)
from gust.services.tokens import ALGORITHM, AUDIENCE, ISSUER, Session, TokenService, token_hash

log = logging.getLogger(__name__)

__all__ = ["ALGORITHM", "AUDIENCE", "ISSUER", "AuthService", "Session", "normalise_email"]

LOGIN_FAILED = "email or password is incorrect"
# The first user creates this team and is its admin; invites add people to their team.
DEFAULT_TEAM_ID = "default"
API_KEY_PREFIX = "gust_"
API_KEY_TOUCH_INTERVAL = 60.0  # seconds between last_used_at writes of one key
RegistrationMode = Literal["open", "invite", "closed"]


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or not domain or "." not in domain or len(email) > 254 or " " in email:
        raise ValidationError("email is not a valid address", field="email")
    return email


class AuthService:
    def __init__(
        self,
        store: AccountsStore,
        *,
        secret_key: str,
        access_ttl: int,
        bcrypt_rounds: int,
        refresh_ttl: int = 7 * 24 * 3600,
        rate_limits: RateLimitService,
        registration: RegistrationMode | None = None,
        login_slowdown: float = 0.0,
        refresh_reuse_grace: float = 10.0,
    ) -> None:
        self.store = store
        self.tokens = TokenService(
            store,
            secret_key=secret_key,
            access_ttl=access_ttl,
            refresh_ttl=refresh_ttl,
            reuse_grace=refresh_reuse_grace,
        )
        self.access_ttl = access_ttl
        self.hasher = PasswordHasher(bcrypt_rounds)
        self.rate_limits = rate_limits
        self.registration = registration
        self.login_slowdown = login_slowdown

    # -- tokens --------------------------------------------------------------------
    def issue_access_token(self, user: User) -> str:
        return self.tokens.issue_access_token(user)

    async def authenticate(self, token: str) -> User:
        """The user an access token belongs to; Unauthorized if it is bad, expired or revoked."""
        claims = self.tokens.decode_access_token(token)
        user = await self.store.get_user(str(claims["sub"]))
        if user is None or user.disabled or claims.get("ver", 0) != user.token_version:
            raise Unauthorized("session is no longer valid", code="invalid_token")
        return user

    async def authenticate_api_key(self, key: str) -> User:
        """The owner of an API key (`gust_...`); Unauthorized if unknown or the owner is disabled."""
        found = await self.store.get_api_key_by_hash(token_hash(key))
        user = await self.store.get_user(found.user_id) if found else None
        if found is None or user is None or user.disabled:
            raise Unauthorized("invalid API key", code="invalid_token")
        at = now()
        if found.last_used_at is None or at - found.last_used_at >= API_KEY_TOUCH_INTERVAL:
            await self.store.touch_api_key(found.id, at)
        return user

    async def start_session(self, user: User) -> Session:
        """A new login of `user`: access token and the first refresh token of a new family."""
        return await self.tokens.start_session(user)

    async def refresh(self, refresh_token: str) -> Session:
        return await self.tokens.rotate(refresh_token)

    async def logout(self, refresh_token: str | None) -> None:
        if refresh_token:
            await self.tokens.end_session(refresh_token)

    # -- registration ----------------------------------------------------------------
    async def registration_mode(self) -> RegistrationMode:
        """REGISTRATION, or when unset: open until the first account exists, then invite only."""
        if self.registration is not None:
            return self.registration
        return "open" if await self.store.count_users() == 0 else "invite"

    async def _limit(self, bucket: str, key: str) -> None:
        await self.rate_limits.check(bucket, key)

    async def register(
        self,
        email: str,
        password: str,
        display_name: str | None,
        *,
        invite_token: str | None = None,
        client_ip: str | None = None,
    ) -> User:
        if client_ip is not None:
            await self._limit(REGISTER_IP, client_ip)
        email = normalise_email(email)
        await self._limit(REGISTER_ACCOUNT, email)
        check_password_rules(password)
        await self._check_invite(invite_token, email)
        password_hash = await self.hasher.hash(password)
        return await self.create_account(
            email, display_name, password_hash=password_hash, invite_token=invite_token
        )

    async def _check_invite(self, invite_token: str | None, email: str) -> None:
        """Refuse early (before hashing) what create_account would refuse."""
        mode = await self.registration_mode()
        if mode == "closed" and await self.store.count_users() > 0:
            raise Forbidden("registration is closed", code="registration_closed")
        if invite_token is None:
            # The first account can always be created: whatever REGISTRATION says, an
            # instance without an admin would be unusable.
            if mode == "open" or await self.store.count_users() == 0:
                return
            raise Forbidden("registration needs an invite link", code="invite_required")
        invite = await self.store.get_invite_by_hash(token_hash(invite_token))
        if invite is None or invite.used_at is not None or invite.expires_at <= now():
            raise Forbidden("this invite link is invalid, used or expired", code="invalid_invite")
        if invite.email and invite.email != email:
            raise Forbidden("this invite link is for another email address", code="invalid_invite")

    async def create_account(
        self,
        email: str,
        display_name: str | None,
        *,
        password_hash: str | None = None,
        invite_token: str | None = None,
        identity: dict[str, str] | None = None,
    ) -> User:
        """Create a user after the registration rules: the first user is the admin of the
        default team; later ones join it when registration is open, or the team of their
        invite (which is used up)."""
        await self._check_invite(invite_token, email)
        created = now()
        user_id = new_id()
        team_id: str = DEFAULT_TEAM_ID
        role: UserRole = "user"
        if invite_token is not None:
            invite = await self.store.use_invite(token_hash(invite_token), user_id, created)
            if invite is None:  # used by a concurrent registration since the check
                raise Forbidden("this invite link is invalid, used or expired", code="invalid_invite")
            team_id, role = invite.team_id, invite.role
        # The first account is the admin of the instance's team. The lock makes two
        # simultaneous first registrations agree on one admin.
        elif await self.store.count_users() == 0 and await self.store.acquire_lock(
            "bootstrap-admin", user_id, ttl=60
        ):
            role = "admin"
        if await self.store.get_team(team_id) is None:
            with contextlib.suppress(Conflict):  # created by a concurrent registration
                await self.store.create_team(Team(id=team_id, name="Default team", created_at=created))
        user = User(
            id=user_id,
            email=email,
            display_name=(display_name or email.split("@")[0]).strip()[:100] or email.split("@")[0],
            role=role,
            team_id=team_id,
            created_at=created,
            password_hash=password_hash,
            identities=[identity] if identity else [],
        )
        await self.store.create_user(user)
        log.info("user %s registered (team %s, role %s)", user.id, team_id, role)
        return user

    # -- operator commands (python -m gust users ...) -----------------------------------
    async def provision(
        self, email: str, password: str, *, admin: bool, display_name: str | None = None
    ) -> User:
        """Create an account whatever the registration rules say (the server's operator
        asked for it): an admin of the instance's team with `admin`, else a user. The
        first account of an instance is always its admin."""
        email = normalise_email(email)
        check_password_rules(password)
        password_hash = await self.hasher.hash(password)
        created = now()
        if await self.store.get_team(DEFAULT_TEAM_ID) is None:
            with contextlib.suppress(Conflict):
                team = Team(id=DEFAULT_TEAM_ID, name="Default team", created_at=created)
                await self.store.create_team(team)
        first = await self.store.count_users() == 0
        user = User(
            id=new_id(),
            email=email,
            display_name=(display_name or email.split("@")[0]).strip()[:100] or email.split("@")[0],
            role="admin" if admin or first else "user",
            team_id=DEFAULT_TEAM_ID,
            created_at=created,
            password_hash=password_hash,
        )
        await self.store.create_user(user)  # Conflict if the address is taken
        log.info("user %s created from the command line (role %s)", user.id, user.role)
        return user

    async def reset_password(self, user: User, new: str) -> User:
        """Set a password without the current one (the operator's reset); every session
        and access token of the user ends."""
        updated = await self._set_password(user, new)
        log.info("password of user %s reset from the command line; sessions revoked", user.id)
        return updated

    async def _set_password(self, user: User, new: str) -> User:
        """Check and store a new password; every session and access token of the user ends."""
        check_password_rules(new)
        password_hash = await self.hasher.hash(new)
        updated = await self.store.update_user(
            user.id, {"password_hash": password_hash, "token_version": user.token_version + 1}
        )
        if updated is None:
            raise NotFound("user not found")
        await self.tokens.end_all_sessions(user.id)
        return updated

    # -- login -------------------------------------------------------------------------
    async def login(self, email: str, password: str, *, client_ip: str | None = None) -> Session:
        if client_ip is not None:
            await self._limit(LOGIN_IP, client_ip)
        try:
            email = normalise_email(email)
        except ValidationError:
            await self.hasher.verify(password, None)
            raise Unauthorized(LOGIN_FAILED, code="login_failed") from None
        # Counted for unknown addresses too: the limits must not reveal which accounts exist.
        # Refused per (account, address): a guesser stops there, and the owner signing in
        # from anywhere else is not locked out by them.
        await self._limit(LOGIN_ACCOUNT_IP, f"{email}\x00{client_ip or '-'}")
        if not await self.rate_limits.within(LOGIN_ACCOUNT, email):
            # Many attempts on one account from many addresses: slow every attempt down
            # (the right password still gets in), never refuse it.
            await asyncio.sleep(self.login_slowdown)
        user = await self.store.get_user_by_email(email)
        ok = await self.hasher.verify(password, user.password_hash if user else None)
        if user is None or not ok or user.disabled:
            # The account id only: never the address typed (it may be someone's password).
            log.info("login failed for %s", user.id if user else "an unknown account")
            raise Unauthorized(LOGIN_FAILED, code="login_failed")
        return await self.start_session(user)

    # -- password ----------------------------------------------------------------------
    async def change_password(self, user: User, current: str | None, new: str) -> Session:
        """Set a new password; every session and access token of the user ends, and the
        caller gets a fresh session."""
        await self._limit(PASSWORD_CHANGE, user.id)  # no brute force with a stolen session
        if user.password_hash is not None:
            if not current or not await self.hasher.verify(current, user.password_hash):
                raise Forbidden("current password is incorrect", code="wrong_password")
        updated = await self._set_password(user, new)
        log.info("user %s changed their password; sessions revoked", user.id)
        return await self.start_session(updated)

    async def revoke_everything(self, user: User) -> User:
        """End every session and access token of a user (disable, role change)."""
        updated = await self.store.update_user(user.id, {"token_version": user.token_version + 1})
        await self.tokens.end_all_sessions(user.id)
        return updated or user
