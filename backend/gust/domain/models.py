"""Records kept by the store. Plain dataclasses: both stores map them to and from documents."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

Role = Literal["user", "assistant", "system"]
UserRole = Literal["admin", "user"]
MessageStatus = Literal["complete", "streaming", "stopped", "error", "interrupted"]
IndexState = Literal["pending", "indexed", "deleted"]
FINAL_STATUSES: frozenset[str] = frozenset({"complete", "stopped", "error", "interrupted"})


def iso(ts: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string with millisecond precision."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Team:
    id: str
    name: str
    created_at: float
    # Prompts an admin offers on an empty chat (shown to every member of the team).
    suggestions: list[str] = field(default_factory=list)


@dataclass(slots=True)
class User:
    id: str
    email: str
    display_name: str
    role: UserRole
    team_id: str
    created_at: float
    password_hash: str | None = None
    disabled: bool = False
    # Bumped on password change or disable: tokens issued before it stop working.
    token_version: int = 0
    identities: list[dict[str, str]] = field(default_factory=list)
    # Profile defaults for new chats (None: the server's default).
    default_model: str | None = None
    default_system_prompt: str | None = None

    def profile(self) -> dict[str, Any]:
        """What the user sees of themselves: public fields plus their defaults."""
        return {
            **self.public(),
            "default_model": self.default_model,
            "default_system_prompt": self.default_system_prompt,
        }

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "display_name": self.display_name,
            "role": self.role,
            "team_id": self.team_id,
            "disabled": self.disabled,
            "created_at": iso(self.created_at),
        }


@dataclass(slots=True)
class Chat:
    id: str
    user_id: str
    team_id: str
    title: str
    model: str | None
    created_at: float
    updated_at: float
    system_prompt: str | None = None
    agent_id: str | None = None
    pinned: bool = False
    archived: bool = False
    share_id: str | None = None
    index_state: IndexState = "pending"
    tags: list[str] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "tags": list(self.tags),
            "model": self.model,
            "system_prompt": self.system_prompt,
            "agent_id": self.agent_id,
            "pinned": self.pinned,
            "archived": self.archived,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }


@dataclass(slots=True)
class Message:
    id: str
    chat_id: str
    user_id: str
    role: Role
    content: str
    status: MessageStatus
    created_at: float
    updated_at: float
    parent_id: str | None = None
    reasoning: str | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    sources: list[dict[str, Any]] | None = None
    # The tools the answer called, in order: {call_id, name, arguments, ok, content, elapsed_ms}
    # (content: the result's preview, as the `tool_result` event carried it).
    tool_calls: list[dict[str, Any]] | None = None
    error: dict[str, Any] | None = None
    # Why the model stopped ("stop", "length"...): "length" means the answer was cut.
    finish_reason: str | None = None
    team_id: str = ""
    index_state: IndexState = "pending"
    # The owner's rating of an answer: {"rating": 1 | -1, "comment": str | None, "updated_at"}.
    feedback: dict[str, Any] | None = None
    # The generation that last wrote this answer when it is not the message id (a
    # continuation runs as a new generation into the same message).
    generation_id: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "chat_id": self.chat_id,
            "parent_id": self.parent_id,
            "role": self.role,
            "content": self.content,
            "reasoning": self.reasoning,
            "status": self.status,
            "model": self.model,
            "usage": self.usage,
            "sources": self.sources,
            "tool_calls": self.tool_calls,
            "error": self.error,
            "finish_reason": self.finish_reason,
            "feedback": public_feedback(self.feedback),
            "created_at": iso(self.created_at),
        }


def public_feedback(feedback: dict[str, Any] | None) -> dict[str, Any] | None:
    if not feedback:
        return None
    return {"rating": feedback["rating"], "comment": feedback.get("comment")}


def to_doc(record: Any) -> dict[str, Any]:
    """A record as a plain dict (nested values copied).

    Records are flat dataclasses whose nested values are plain dicts and lists, so this
    is a dict of the fields; dataclasses.asdict walked and deep-copied every value and cost
    several times as much on every write.
    """
    return {
        name: copy.deepcopy(value) if isinstance(value, dict | list) else value
        for name in field_names(type(record))
        for value in (getattr(record, name),)
    }


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names
