"""update_team on every store: fields set, other teams untouched, unknown team -> None,
unknown fields refused; user profile defaults kept by update_user."""

from __future__ import annotations

import pytest

from gust.domain.errors import ValidationError
from gust.domain.models import Team, User
from gust.ports.store import Store


async def test_update_team_sets_suggestions(store: Store) -> None:
    await store.create_team(Team(id="a", name="A", created_at=1.0))
    await store.create_team(Team(id="b", name="B", created_at=1.0))
    assert (await store.get_team("a")).suggestions == []  # type: ignore[union-attr]
    updated = await store.update_team("a", {"suggestions": ["Plan a trip", "Explain é"]})
    assert updated is not None and updated.suggestions == ["Plan a trip", "Explain é"]
    assert (await store.get_team("a")) == updated
    assert (await store.get_team("b")).suggestions == []  # type: ignore[union-attr]
    assert (await store.update_team("a", {"suggestions": []})).suggestions == []  # type: ignore[union-attr]
    assert await store.update_team("missing", {"suggestions": ["x"]}) is None
    assert await store.get_team("missing") is None
    with pytest.raises(ValidationError):
        await store.update_team("a", {"nope": 1})


async def test_user_profile_defaults_round_trip(store: Store) -> None:
    user = User(id="u1", email="p@example.com", display_name="P", role="user", team_id="a", created_at=1.0)
    await store.create_user(user)
    changed = await store.update_user("u1", {"default_model": "m", "default_system_prompt": "Be kind."})
    assert changed is not None and changed.default_model == "m"
    again = await store.get_user("u1")
    assert again is not None and again.default_system_prompt == "Be kind."
    cleared = await store.update_user("u1", {"default_model": None})
    assert cleared is not None and cleared.default_model is None
