"""The prompt library: saved prompts run with `/command`, personal or shared with a team.

Anyone may keep personal prompts; team admins create, change and delete the team's. A
change stores a new version (older ones are kept and listed newest first). A body may
hold `{{variables}}`, filled in by the client before it sends the prompt.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from gust.domain.errors import Conflict, NotFound, ValidationError
from gust.domain.ids import new_id, now
from gust.domain.models import User
from gust.ports.extras_store import ExtrasStore, Prompt, PromptConflict
from gust.services.teams import require_admin

COMMAND = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,39})\s*\}\}")
MAX_NAME = 100
MAX_BODY = 20_000


def variables(body: str) -> list[str]:
    """The `{{names}}` of a body, each once, in order of appearance."""
    seen: list[str] = []
    for name in VARIABLE.findall(body):
        if name not in seen:
            seen.append(name)
    return seen


def _clean(name: str | None, command: str | None, body: str | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if name is not None:
        name = " ".join(name.split())
        if not 1 <= len(name) <= MAX_NAME:
            raise ValidationError(f"name must be 1 to {MAX_NAME} characters", field="name")
        changes["name"] = name
    if command is not None:
        command = command.strip().lower().removeprefix("/")
        if not COMMAND.match(command):
            raise ValidationError(
                "command must be 1 to 40 lower-case letters, digits or dashes (a slug)", field="command"
            )
        changes["command"] = command
    if body is not None:
        if not body.strip() or len(body) > MAX_BODY:
            raise ValidationError(f"body must be 1 to {MAX_BODY} characters", field="body")
        changes["body"] = body
    return changes


class PromptService:
    def __init__(self, store: ExtrasStore) -> None:
        self.store = store

    def _visible(self, user: User, prompt: Prompt | None) -> Prompt:
        if prompt is None or not (
            prompt.team_id == user.team_id if prompt.team_id else prompt.user_id == user.id
        ):
            raise NotFound("prompt not found")
        return prompt

    def _check_writable(self, user: User, prompt: Prompt) -> None:
        if prompt.team_id:
            require_admin(user)

    async def list_visible(self, user: User) -> list[Prompt]:
        return await self.store.list_prompts(user.id, user.team_id)

    async def get(self, user: User, prompt_id: str) -> Prompt:
        return self._visible(user, await self.store.get_prompt(prompt_id))

    async def create(self, user: User, *, name: str, command: str, body: str, team: bool) -> Prompt:
        fields = _clean(name, command, body)
        if team:
            require_admin(user)
        created = now()
        prompt = Prompt(
            id=new_id(), user_id=user.id, team_id=user.team_id if team else None, version=1,
            created_at=created, updated_at=created, **fields,
        )
        try:
            await self.store.create_prompt(prompt)
        except PromptConflict:
            raise Conflict(f"/{prompt.command} already exists", code="command_taken") from None
        return prompt

    async def update(
        self, user: User, prompt_id: str, *, name: str | None, command: str | None, body: str | None
    ) -> Prompt:
        current = await self.get(user, prompt_id)
        self._check_writable(user, current)
        changes = _clean(name, command, body)
        if not changes:
            raise ValidationError("nothing to change", field="body")
        prompt = replace(current, **changes, version=current.version + 1, updated_at=now())
        try:
            await self.store.add_prompt_version(prompt)
        except PromptConflict:
            raise Conflict(f"/{prompt.command} already exists", code="command_taken") from None
        return prompt

    async def versions(self, user: User, prompt_id: str) -> list[Prompt]:
        await self.get(user, prompt_id)
        return await self.store.list_prompt_versions(prompt_id)

    async def delete(self, user: User, prompt_id: str) -> None:
        current = await self.get(user, prompt_id)
        self._check_writable(user, current)
        await self.store.delete_prompt(prompt_id)
