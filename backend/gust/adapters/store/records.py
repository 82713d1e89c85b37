"""Mapping between domain records and stored documents, shared by the store adapters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from gust.domain.errors import ValidationError
from gust.domain.models import Chat, Message, Team, User, field_names, to_doc

R = TypeVar("R", Team, User, Chat, Message)

_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(field_names(cls)) for cls in (Team, User, Chat, Message)
}


def from_doc(cls: type[R], doc: Mapping[str, Any]) -> R:
    """Build a record from a stored document, ignoring unknown keys (forward compatible)."""
    fields = _FIELDS[cls]
    data = {k: v for k, v in doc.items() if k in fields}
    if "_id" in doc and "id" not in data:
        data["id"] = doc["_id"]
    return cls(**data)


def check_changes(cls: type, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse updates of unknown fields or of the id (a programming error, not user input)."""
    bad = set(changes) - _FIELDS[cls] | ({"id"} & set(changes))
    if bad:
        raise ValidationError(f"cannot update fields {sorted(bad)} of {cls.__name__}")
    return dict(changes)


def mark_pending(changes: dict[str, Any]) -> dict[str, Any]:
    """A changed chat or message must be re-indexed, unless the change is the indexer's own."""
    changes.setdefault("index_state", "pending")
    return changes


__all__ = ["from_doc", "check_changes", "mark_pending", "to_doc"]
