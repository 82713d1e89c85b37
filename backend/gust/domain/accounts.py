"""Records of accounts and security: refresh tokens, API keys, invites, agents, error log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gust.domain.models import UserRole, iso

Severity = Literal["error", "warning"]


@dataclass(slots=True)
class RefreshToken:
    """One refresh token of a login's family; only its SHA-256 is stored."""

    id: str
    user_id: str
    family_id: str
    token_hash: str
    created_at: float
    expires_at: float
    # Set when the token was exchanged for a new one; presenting it again is reuse.
    used_at: float | None = None
    revoked_at: float | None = None


@dataclass(slots=True)
class ApiKey:
    id: str
    user_id: str
    name: str
    key_hash: str
    prefix: str  # the first characters of the key, so people can tell keys apart
    created_at: float
    last_used_at: float | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.prefix,
            "created_at": iso(self.created_at),
            "last_used_at": iso(self.last_used_at),
        }


@dataclass(slots=True)
class Invite:
    """A one-time link that lets one person join a team."""

    id: str
    team_id: str
    token_hash: str
    role: UserRole
    created_by: str
    created_at: float
    expires_at: float
    email: str | None = None
    used_at: float | None = None
    used_by: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "email": self.email,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "used_at": iso(self.used_at),
        }


@dataclass(slots=True)
class Agent:
    """A team's preset: model, prompt, optional avatar and webhook (token encrypted at rest)."""

    id: str
    team_id: str
    name: str
    description: str
    model: str | None
    system_prompt: str
    created_by: str
    created_at: float
    updated_at: float
    webhook_url: str | None = None
    webhook_token_encrypted: str | None = None
    avatar_type: str | None = None  # media type of the stored avatar, None without one
    avatar_version: int = 0

    def public(self) -> dict[str, Any]:
        webhook = None
        if self.webhook_url:
            webhook = {"url": self.webhook_url, "has_token": self.webhook_token_encrypted is not None}
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "model": self.model,
            "system_prompt": self.system_prompt,
            "webhook": webhook,
            "avatar_url": f"/api/agents/{self.id}/avatar?v={self.avatar_version}"
            if self.avatar_type
            else None,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(slots=True)
class AgentAvatar:
    agent_id: str
    team_id: str
    content_type: str
    data: bytes


@dataclass(slots=True)
class ErrorLogEntry:
    """A server error as admins see it: where and when, never message text or secrets."""

    id: str
    created_at: float
    severity: Severity
    status: int
    method: str
    route: str
    request_id: str
    error_type: str
    user_id: str | None = None
    team_id: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": iso(self.created_at),
            "severity": self.severity,
            "status": self.status,
            "method": self.method,
            "route": self.route,
            "request_id": self.request_id,
            "error_type": self.error_type,
            "user_id": self.user_id,
        }
