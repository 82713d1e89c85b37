"""Request and response shapes of accounts, admin, API keys, agents and sign-in providers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from gust.handlers.schemas import Patch, Strict, UserOut


# -- sessions -------------------------------------------------------------------------
class PasswordChangeIn(Strict):
    current_password: str | None = Field(None, max_length=1024)
    new_password: str = Field(max_length=1024)


class ProfileOut(UserOut):
    default_model: str | None
    default_system_prompt: str | None


class ProfileIn(Strict):
    """Fields left out stay as they are; `null` clears a default."""

    display_name: str | None = Field(None, min_length=1, max_length=100)
    default_model: str | None = Field(None, min_length=1, max_length=200)
    default_system_prompt: str | None = Field(None, max_length=20_000)


class ProviderOut(BaseModel):
    id: str
    name: str
    start_url: str


class ProvidersOut(BaseModel):
    """Sign-in methods of this server: password, and the configured OAuth providers."""

    items: list[ProviderOut]
    password: bool
    registration: Literal["open", "invite", "closed"]
    first_account: bool = Field(
        description="True while the server has no account: the next one created becomes its admin"
    )


class OAuthStartQuery(Strict):
    next: str | None = Field(None, max_length=500)
    invite: str | None = Field(None, max_length=200)


# -- API keys -------------------------------------------------------------------------
class ApiKeyCreateIn(Strict):
    name: str = Field(min_length=1, max_length=100)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: str
    last_used_at: str | None


class ApiKeyCreatedOut(ApiKeyOut):
    """The new key; `key` is shown this once and cannot be read again."""

    key: str


class ApiKeyListOut(BaseModel):
    items: list[ApiKeyOut]


# -- admin ----------------------------------------------------------------------------
class UserListOut(BaseModel):
    items: list[UserOut]


class UserPatchIn(Patch):
    not_null = frozenset({"role", "disabled"})
    role: Literal["admin", "user"] | None = None
    disabled: bool | None = None


class InviteCreateIn(Strict):
    role: Literal["admin", "user"] = "user"
    email: str | None = Field(None, max_length=254)


class InviteOut(BaseModel):
    id: str
    role: Literal["admin", "user"]
    email: str | None
    created_at: str
    expires_at: str
    used_at: str | None


class InviteCreatedOut(InviteOut):
    """The new invite; `token` and `url` are shown this once."""

    token: str
    url: str


class InviteListOut(BaseModel):
    items: list[InviteOut]


class ErrorListQuery(Strict):
    limit: int = Field(100, ge=1, le=1000)


class ErrorEntryOut(BaseModel):
    id: str
    time: str
    severity: Literal["error", "warning"]
    status: int
    method: str
    route: str
    request_id: str
    error_type: str
    user_id: str | None


class ErrorListOut(BaseModel):
    items: list[ErrorEntryOut]


# -- agents ---------------------------------------------------------------------------
class WebhookIn(Strict):
    url: str = Field(min_length=1, max_length=2000)
    # Omitted on update: the stored token is kept if the URL is unchanged.
    token: str | None = Field(None, min_length=1, max_length=4096)


class AgentIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    model: str | None = Field(None, max_length=200)
    system_prompt: str = Field("", max_length=20_000)
    webhook: WebhookIn | None = None


class WebhookOut(BaseModel):
    url: str
    has_token: bool


class AgentOut(BaseModel):
    id: str
    name: str
    description: str
    model: str | None
    system_prompt: str
    webhook: WebhookOut | None
    avatar_url: str | None
    created_at: str
    updated_at: str


class AgentListOut(BaseModel):
    items: list[AgentOut]
