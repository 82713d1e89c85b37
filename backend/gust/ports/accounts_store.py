"""Store methods of accounts and security (refresh tokens, API keys, invites, agents, errors).

Implemented by the SQLite and MongoDB store mixins (adapters/store/*_accounts.py). Team
objects are read with the caller's `team_id` and user objects with the owner's `user_id`:
a record of another team or user is reported as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gust.domain.accounts import Agent, AgentAvatar, ApiKey, ErrorLogEntry, Invite, RefreshToken
from gust.domain.models import User
from gust.ports.store import Store


class AccountsStore(Store, Protocol):
    # -- users (beyond the core port) ---------------------------------------------------
    async def list_team_users(self, team_id: str, *, limit: int) -> list[User]:
        """Users of a team, oldest first."""

    async def get_user_by_identity(self, provider: str, subject: str) -> User | None:
        """The user linked to an external identity (OAuth provider + subject)."""

    async def count_admins(self, team_id: str) -> int:
        """Enabled admins of a team."""

    # -- refresh tokens -----------------------------------------------------------------
    async def create_refresh_token(self, token: RefreshToken) -> None: ...

    async def get_refresh_token_by_hash(self, token_hash: str) -> RefreshToken | None: ...

    async def use_refresh_token(self, token_hash: str, at: float) -> tuple[RefreshToken | None, bool]:
        """Mark a token used, atomically. Returns (token, True) when this call used it;
        (token, False) when it was already used or revoked; (None, False) when unknown."""

    async def revoke_refresh_family(self, family_id: str, at: float) -> int:
        """Revoke every live token of a family; returns how many were revoked."""

    async def revoke_user_refresh_tokens(self, user_id: str, at: float) -> int:
        """Revoke every live token of a user (password change, disable)."""

    # -- API keys -----------------------------------------------------------------------
    async def create_api_key(self, key: ApiKey) -> None: ...

    async def list_api_keys(self, user_id: str) -> list[ApiKey]:
        """A user's keys, oldest first."""

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKey | None: ...

    async def delete_api_key(self, user_id: str, key_id: str) -> bool: ...

    async def touch_api_key(self, key_id: str, at: float) -> None:
        """Record a use of the key (last_used_at)."""

    # -- invites ------------------------------------------------------------------------
    async def create_invite(self, invite: Invite) -> None: ...

    async def list_invites(self, team_id: str) -> list[Invite]:
        """A team's invites, newest first."""

    async def get_invite_by_hash(self, token_hash: str) -> Invite | None: ...

    async def use_invite(self, token_hash: str, user_id: str, at: float) -> Invite | None:
        """Mark an unused, unexpired invite used by `user_id`, atomically; None otherwise."""

    async def delete_invite(self, team_id: str, invite_id: str) -> bool: ...

    # -- agents -------------------------------------------------------------------------
    async def create_agent(self, agent: Agent) -> None: ...

    async def get_agent(self, team_id: str, agent_id: str) -> Agent | None: ...

    async def list_agents(self, team_id: str) -> list[Agent]:
        """A team's agents by name."""

    async def update_agent(self, team_id: str, agent_id: str, changes: Mapping[str, Any]) -> Agent | None: ...

    async def delete_agent(self, team_id: str, agent_id: str) -> bool:
        """Delete an agent and its avatar."""

    async def put_agent_avatar(self, avatar: AgentAvatar) -> None: ...

    async def get_agent_avatar(self, team_id: str, agent_id: str) -> AgentAvatar | None: ...

    # -- error log ----------------------------------------------------------------------
    async def add_error(self, entry: ErrorLogEntry, *, keep: int) -> None:
        """Record a server error, keeping only the newest `keep` entries of its team (a quota
        per team: one team's errors never evict another's)."""

    async def list_errors(self, *, team_id: str | None, limit: int) -> list[ErrorLogEntry]:
        """Newest first: the entries of `team_id` only (team_id None: every team's)."""
