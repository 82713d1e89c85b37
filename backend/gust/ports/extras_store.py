"""Store methods for message deletion, answer feedback and the prompt library."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from gust.ports.store import Store


@dataclass(slots=True)
class Prompt:
    """One version of a saved prompt. `team_id` set: a team prompt (visible to the team);
    else a personal one of `user_id`. Every change stores a new version; `id` stays."""

    id: str
    name: str
    command: str
    body: str
    user_id: str
    team_id: str | None
    version: int
    created_at: float
    updated_at: float

    def public(self) -> dict[str, Any]:
        from gust.domain.models import iso

        return {
            "id": self.id,
            "name": self.name,
            "command": self.command,
            "body": self.body,
            "team_id": self.team_id,
            "version": self.version,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


class PromptConflict(Exception):
    """The command is taken in this owner scope."""


class ExtrasStore(Store, Protocol):
    # -- messages ------------------------------------------------------------------------
    async def delete_messages(self, user_id: str, chat_id: str, ids: Collection[str]) -> int:
        """Delete these messages of the chat (and leave search tombstones for them)."""

    async def feedback_counts(self, team_id: str) -> dict[str, dict[str, int]]:
        """Rated answers of a team per model: {model: {"up": n, "down": n}}."""

    # -- prompts -------------------------------------------------------------------------
    async def create_prompt(self, prompt: Prompt) -> None:
        """Insert version 1; raise PromptConflict if the command is taken in its scope."""

    async def get_prompt(self, prompt_id: str) -> Prompt | None:
        """The current (newest) version."""

    async def list_prompts(self, user_id: str, team_id: str) -> list[Prompt]:
        """Current versions of the user's personal prompts and the team's, by command."""

    async def add_prompt_version(self, prompt: Prompt) -> None:
        """Store `prompt` as its newest version; PromptConflict if the command is taken."""

    async def list_prompt_versions(self, prompt_id: str) -> list[Prompt]:
        """Every version, newest first."""

    async def delete_prompt(self, prompt_id: str) -> bool: ...


def scope_key(prompt: Prompt | Mapping[str, Any]) -> str:
    """Commands are unique per owner scope: the team's prompts, or one user's."""
    team_id = prompt.team_id if isinstance(prompt, Prompt) else prompt.get("team_id")
    user_id = prompt.user_id if isinstance(prompt, Prompt) else prompt["user_id"]
    return f"team:{team_id}" if team_id else f"user:{user_id}"
