"""A user's own profile: display name and the defaults a new chat starts with."""

from __future__ import annotations

from typing import Any

from gust.domain.errors import NotFound, ValidationError
from gust.domain.models import User
from gust.ports.store import Store
from gust.services.model_registry import ModelRegistry

EDITABLE = frozenset({"display_name", "default_model", "default_system_prompt"})


class ProfileService:
    def __init__(self, store: Store, models: ModelRegistry) -> None:
        self.store = store
        self.models = models

    async def update(self, user: User, changes: dict[str, Any]) -> User:
        """Apply the given fields (None clears a default); 422 for an unknown model."""
        unknown = set(changes) - EDITABLE
        if unknown:
            raise ValidationError(f"cannot change {sorted(unknown)}", field=sorted(unknown)[0])
        if "display_name" in changes:
            name = (changes["display_name"] or "").strip()
            if not name:
                raise ValidationError("display_name must not be empty", field="display_name")
            changes["display_name"] = name
        model = changes.get("default_model")
        if model is not None:
            if model not in self.models.specs:
                valid = ", ".join(self.models.specs) or "none"
                raise ValidationError(
                    f"unknown model {model!r}; valid models: {valid}", field="default_model"
                )
        if "default_system_prompt" in changes and not (changes["default_system_prompt"] or "").strip():
            changes["default_system_prompt"] = None
        if not changes:
            return user
        updated = await self.store.update_user(user.id, changes)
        if updated is None:
            raise NotFound("user not found")
        return updated
