"""Team administration: members, roles, disabling, and one-time invite links."""

from __future__ import annotations

import logging

from gust.domain.accounts import Invite
from gust.domain.errors import Conflict, Forbidden, NotFound
from gust.domain.ids import new_id, new_token, now
from gust.domain.models import User, UserRole
from gust.ports.accounts_store import AccountsStore
from gust.services.auth import AuthService, normalise_email
from gust.services.tokens import token_hash

log = logging.getLogger(__name__)

MAX_LISTED_USERS = 1000


def require_admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden("only team admins can do this", code="admin_required")


class TeamService:
    def __init__(self, store: AccountsStore, auth: AuthService, *, invite_ttl: int) -> None:
        self.store = store
        self.auth = auth
        self.invite_ttl = invite_ttl

    async def list_users(self, admin: User) -> list[User]:
        require_admin(admin)
        return await self.store.list_team_users(admin.team_id, limit=MAX_LISTED_USERS)

    async def _member(self, admin: User, user_id: str) -> User:
        require_admin(admin)
        user = await self.store.get_user(user_id)
        if user is None or user.team_id != admin.team_id:
            raise NotFound("user not found")
        return user

    async def update_user(
        self, admin: User, user_id: str, *, role: UserRole | None = None, disabled: bool | None = None
    ) -> User:
        """Change a member's role or disable (or re-enable) them. A disabled user's access
        tokens, refresh tokens and API keys stop working at once."""
        user = await self._member(admin, user_id)
        loses_admin = user.role == "admin" and not user.disabled and (role == "user" or disabled is True)
        if loses_admin and await self.store.count_admins(admin.team_id) <= 1:
            raise Conflict("a team needs at least one enabled admin", code="last_admin")
        changes: dict[str, object] = {}
        if role is not None and role != user.role:
            changes["role"] = role
        if disabled is not None and disabled != user.disabled:
            changes["disabled"] = disabled
        if not changes:
            return user
        updated = await self.store.update_user(user.id, changes)
        if updated is None:
            raise NotFound("user not found")
        if changes.get("disabled") is True:
            updated = await self.auth.revoke_everything(updated)
        log.info("admin %s changed user %s: %s", admin.id, user.id, sorted(changes))
        return updated

    # -- invites -------------------------------------------------------------------
    async def create_invite(self, admin: User, *, role: UserRole, email: str | None) -> tuple[Invite, str]:
        """A one-time invite into the admin's team; returns the invite and its secret token."""
        require_admin(admin)
        secret = new_token(32)
        created = now()
        invite = Invite(
            id=new_id(),
            team_id=admin.team_id,
            token_hash=token_hash(secret),
            role=role,
            created_by=admin.id,
            created_at=created,
            expires_at=created + self.invite_ttl,
            email=normalise_email(email) if email else None,
        )
        await self.store.create_invite(invite)
        log.info("admin %s created invite %s (role %s)", admin.id, invite.id, role)
        return invite, secret

    async def list_invites(self, admin: User) -> list[Invite]:
        require_admin(admin)
        return await self.store.list_invites(admin.team_id)

    async def delete_invite(self, admin: User, invite_id: str) -> None:
        require_admin(admin)
        if not await self.store.delete_invite(admin.team_id, invite_id):
            raise NotFound("invite not found")
