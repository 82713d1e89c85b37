"""Suggested prompts: a short list a team admin sets, shown on an empty chat."""

from __future__ import annotations

from gust.domain.errors import NotFound, ValidationError
from gust.domain.models import User
from gust.ports.store import Store
from gust.services.teams import require_admin

MAX_SUGGESTIONS = 12
MAX_SUGGESTION_CHARS = 500


class SuggestionService:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def for_user(self, user: User) -> list[str]:
        team = await self.store.get_team(user.team_id)
        return list(team.suggestions) if team else []

    async def replace(self, admin: User, items: list[str]) -> list[str]:
        """Replace the team's list (admins only): blanks dropped, duplicates once, order kept."""
        require_admin(admin)
        clean: list[str] = []
        for index, item in enumerate(items):
            text = item.strip()
            if len(text) > MAX_SUGGESTION_CHARS:
                raise ValidationError(
                    f"a suggestion is at most {MAX_SUGGESTION_CHARS} characters", field=f"items.{index}"
                )
            if text and text not in clean:
                clean.append(text)
        if len(clean) > MAX_SUGGESTIONS:
            raise ValidationError(f"at most {MAX_SUGGESTIONS} suggestions", field="items")
        team = await self.store.update_team(admin.team_id, {"suggestions": clean})
        if team is None:
            raise NotFound("team not found")
        return team.suggestions
