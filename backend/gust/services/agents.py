"""Agents: a team's presets (model, system prompt, avatar, webhook), managed by its admins
and readable by its members. Webhook tokens are encrypted at rest and never returned."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gust.domain.accounts import Agent, AgentAvatar
from gust.domain.errors import NotFound, ValidationError
from gust.domain.ids import new_id, now
from gust.domain.models import User
from gust.ports.accounts_store import AccountsStore
from gust.ports.web import FetchError, UrlGuard
from gust.services.avatars import process_avatar
from gust.services.secretbox import SecretBox, SecretUnreadable
from gust.services.teams import require_admin

log = logging.getLogger(__name__)

MAX_AGENTS_PER_TEAM = 500


@dataclass(slots=True)
class AgentInput:
    name: str
    description: str = ""
    model: str | None = None
    system_prompt: str = ""
    webhook_url: str | None = None
    webhook_token: str | None = None  # None: keep the stored token if the URL did not change


@dataclass(slots=True)
class Webhook:
    """What the generation service needs to call an agent's webhook."""

    url: str
    token: str | None


def _check_webhook_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - raises ValueError for a malformed [IPv6] host
    except ValueError:
        raise ValidationError("webhook.url is not a valid URL", field="webhook.url") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ValidationError("webhook.url must be an http(s) URL without credentials", field="webhook.url")
    return url


class AgentService:
    def __init__(self, store: AccountsStore, box: SecretBox, *, url_guard: UrlGuard) -> None:
        self.store = store
        self.box = box
        self.url_guard = url_guard

    async def _check_webhook_target(self, data: AgentInput) -> None:
        """The SSRF guard at configuration time (it checks again at every call): a webhook at
        a private, loopback, link-local or metadata address is refused unless allow-listed."""
        if not data.webhook_url:
            return
        _check_webhook_url(data.webhook_url)
        try:
            await self.url_guard.check_target(data.webhook_url)
        except FetchError as exc:
            raise ValidationError(
                f"webhook.url is not allowed: {exc.reason} (an administrator can allow an "
                "internal host with SSRF_ALLOWED_HOSTS)",
                code="webhook_url_blocked",
                field="webhook.url",
            ) from None

    async def list(self, user: User) -> list[Agent]:
        return await self.store.list_agents(user.team_id)

    async def get(self, user: User, agent_id: str) -> Agent:
        agent = await self.store.get_agent(user.team_id, agent_id)
        if agent is None:
            raise NotFound("agent not found")
        return agent

    def _fields(self, agent_id: str, data: AgentInput, current: Agent | None) -> dict[str, Any]:
        name = " ".join(data.name.split())
        if not name:
            raise ValidationError("name must not be empty", field="name")
        fields: dict[str, Any] = {
            "name": name,
            "description": data.description.strip(),
            "model": data.model or None,
            "system_prompt": data.system_prompt,
            "webhook_url": None,
            "webhook_token_encrypted": None,
        }
        if data.webhook_url:
            fields["webhook_url"] = _check_webhook_url(data.webhook_url)
            if data.webhook_token:
                fields["webhook_token_encrypted"] = self.box.encrypt(data.webhook_token, context=agent_id)
            elif current is not None and current.webhook_url == data.webhook_url:
                # Tokens are never returned, so a client cannot send it back: keep it, but
                # only for the same URL (never hand one host's token to another).
                fields["webhook_token_encrypted"] = current.webhook_token_encrypted
        return fields

    async def create(self, admin: User, data: AgentInput) -> Agent:
        require_admin(admin)
        if len(await self.store.list_agents(admin.team_id)) >= MAX_AGENTS_PER_TEAM:
            raise ValidationError(f"a team may have at most {MAX_AGENTS_PER_TEAM} agents")
        await self._check_webhook_target(data)
        created = now()
        agent_id = new_id()
        agent = Agent(
            id=agent_id,
            team_id=admin.team_id,
            created_by=admin.id,
            created_at=created,
            updated_at=created,
            **self._fields(agent_id, data, None),
        )
        await self.store.create_agent(agent)
        log.info("admin %s created agent %s", admin.id, agent.id)
        return agent

    async def replace(self, admin: User, agent_id: str, data: AgentInput) -> Agent:
        require_admin(admin)
        current = await self.get(admin, agent_id)
        await self._check_webhook_target(data)
        changes = {**self._fields(agent_id, data, current), "updated_at": now()}
        agent = await self.store.update_agent(admin.team_id, agent_id, changes)
        if agent is None:
            raise NotFound("agent not found")
        return agent

    async def delete(self, admin: User, agent_id: str) -> None:
        require_admin(admin)
        if not await self.store.delete_agent(admin.team_id, agent_id):
            raise NotFound("agent not found")
        log.info("admin %s deleted agent %s", admin.id, agent_id)

    async def set_avatar(self, admin: User, agent_id: str, data: bytes) -> Agent:
        require_admin(admin)
        current = await self.get(admin, agent_id)
        image, content_type = await process_avatar(data)
        await self.store.put_agent_avatar(
            AgentAvatar(agent_id=agent_id, team_id=admin.team_id, content_type=content_type, data=image)
        )
        agent = await self.store.update_agent(
            admin.team_id,
            agent_id,
            {"avatar_type": content_type, "avatar_version": current.avatar_version + 1, "updated_at": now()},
        )
        if agent is None:
            raise NotFound("agent not found")
        return agent

    async def avatar(self, user: User, agent_id: str) -> AgentAvatar:
        avatar = await self.store.get_agent_avatar(user.team_id, agent_id)
        if avatar is None:
            raise NotFound("agent has no avatar")
        return avatar

    async def webhook(self, user: User, agent_id: str) -> Webhook | None:
        """The agent's webhook with its decrypted token, for server-side use only."""
        agent = await self.get(user, agent_id)
        if not agent.webhook_url:
            return None
        token = None
        if agent.webhook_token_encrypted:
            try:
                token = self.box.decrypt(agent.webhook_token_encrypted, context=agent.id)
            except SecretUnreadable:
                log.error(
                    "webhook token of agent %s cannot be decrypted (AUTH_SECRET_KEY changed?)", agent.id
                )
        return Webhook(url=agent.webhook_url, token=token)
