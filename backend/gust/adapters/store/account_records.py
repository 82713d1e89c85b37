"""Mapping of the accounts records (refresh tokens, keys, invites, agents, errors) to documents."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from gust.domain.accounts import Agent, AgentAvatar, ApiKey, ErrorLogEntry, Invite, RefreshToken
from gust.domain.errors import ValidationError

A = TypeVar("A", RefreshToken, ApiKey, Invite, Agent, AgentAvatar, ErrorLogEntry)

_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls))
    for cls in (RefreshToken, ApiKey, Invite, Agent, AgentAvatar, ErrorLogEntry)
}


def load(cls: type[A], doc: Mapping[str, Any]) -> A:
    """A record from a stored document; unknown keys are ignored (forward compatible)."""
    fields = _FIELDS[cls]
    data = {k: v for k, v in doc.items() if k in fields}
    if "_id" in doc and "id" in fields and "id" not in data:
        data["id"] = doc["_id"]
    return cls(**data)


def dump(record: Any) -> dict[str, Any]:
    return dataclasses.asdict(record)


def check_agent_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse updates of unknown fields, the id or the team (programming errors)."""
    bad = set(changes) - _FIELDS[Agent] | ({"id", "team_id"} & set(changes))
    if bad:
        raise ValidationError(f"cannot update fields {sorted(bad)} of Agent")
    return dict(changes)
