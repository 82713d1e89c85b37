"""Request and response shapes: validation of bodies and the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _patch_schema(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    # A `not_null` field is documented as its non-null type, with no null default.
    for name in getattr(cls, "not_null", ()):
        prop = schema["properties"][name]
        alternatives = [alt for alt in prop.pop("anyOf", []) if alt.get("type") != "null"]
        if alternatives:
            prop.update(alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives})
        prop.pop("default", None)


class Patch(Strict):
    """A partial update: an absent field is left as it is, and the fields in `not_null` refuse
    an explicit null with a 422 naming the field (`{"title": null}` was a 500, `{"pinned":
    null}` was stored and broke the chat list). Fields whose null means something (`agent_id:
    null` unbinds the agent) stay nullable. Read a patch with `model_dump(exclude_unset=True)`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_patch_schema)
    not_null: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        unknown = cls.not_null - set(cls.model_fields)
        if unknown:
            raise TypeError(f"{cls.__name__}.not_null names no field: {sorted(unknown)}")

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name in cls.not_null:
            raise ValueError("may be omitted, but not null")
        return value


# -- requests -------------------------------------------------------------------------
class RegisterIn(Strict):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)
    display_name: str | None = Field(None, max_length=100)
    invite: str | None = Field(None, max_length=200)  # the token of an invite link


class LoginIn(Strict):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class ChatCreateIn(Strict):
    title: str | None = Field(None, max_length=200)
    model: str | None = Field(None, max_length=200)
    system_prompt: str | None = Field(None, max_length=20_000)
    agent_id: str | None = Field(None, max_length=64)  # one of my team's agents


class ChatPatchIn(Patch):
    not_null = frozenset({"title", "pinned", "archived"})
    title: str | None = Field(None, min_length=1, max_length=200)
    pinned: bool | None = None
    archived: bool | None = None
    system_prompt: str | None = Field(None, max_length=20_000)  # null: no system prompt
    model: str | None = Field(None, max_length=200)  # null: the default model
    agent_id: str | None = Field(None, max_length=64)  # null unbinds the agent
    # At most 20 tags of 1-32 characters; trimmed, lower-cased and deduplicated.
    tags: list[str] | None = Field(None, max_length=100)


class ChatListQuery(Strict):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=500)
    archived: bool | None = None
    tag: str | None = Field(None, min_length=1, max_length=32)  # only chats with this tag


class ChatGetQuery(Strict):
    leaf: str | None = Field(None, max_length=64)


# -- responses ------------------------------------------------------------------------
class ErrorBody(BaseModel):
    code: str
    message: str
    request_id: str | None = None
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


class UserOut(BaseModel):
    id: str
    email: str
    display_name: str
    role: Literal["admin", "user"]
    team_id: str
    disabled: bool
    created_at: str


class LoginOut(BaseModel):
    user: UserOut
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int


class ChatOut(BaseModel):
    id: str
    title: str
    tags: list[str]
    model: str | None
    system_prompt: str | None
    agent_id: str | None
    pinned: bool
    archived: bool
    created_at: str
    updated_at: str


class ChatListOut(BaseModel):
    items: list[ChatOut]
    next_cursor: str | None


class FeedbackOut(BaseModel):
    rating: Literal[1, -1]
    comment: str | None


class ToolCallOut(BaseModel):
    """One tool call of an answer, as its `tool_call` and `tool_result` events said."""

    call_id: str
    name: str
    arguments: str
    ok: bool
    content: str = Field(description="The result's first characters (an error message when ok is false)")
    elapsed_ms: int


class MessageOut(BaseModel):
    id: str
    chat_id: str
    parent_id: str | None
    role: Literal["user", "assistant", "system"]
    content: str
    reasoning: str | None
    status: Literal["complete", "streaming", "stopped", "error", "interrupted"]
    model: str | None
    usage: dict[str, Any] | None
    sources: list[dict[str, Any]] | None
    tool_calls: list[ToolCallOut] | None = None
    error: dict[str, Any] | None
    finish_reason: str | None = Field(
        None, description='why the model stopped: "length" means the answer was cut at the length limit'
    )
    feedback: FeedbackOut | None = None
    created_at: str


class BranchMessageOut(MessageOut):
    sibling_ids: list[str]


class ChatDetailOut(ChatOut):
    messages: list[BranchMessageOut]


class MessageListOut(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class HealthOut(BaseModel):
    status: Literal["ok", "unhealthy"]
    version: str
    # Why the process should be restarted (503): event loop late, a store call stuck.
    problems: list[str] | None = None


class ComponentOut(BaseModel):
    status: Literal["ok", "down", "degraded"]
    backend: str | None = None
    detail: str | None = None
    latency_ms: float | None = None
    pending: int | None = None  # search: documents waiting for the indexer


class ReadyOut(BaseModel):
    status: Literal["ok", "degraded", "down"]
    version: str
    components: dict[str, ComponentOut]


class ApiIndexOut(BaseModel):
    name: str
    version: str
    docs: str
    openapi: str
    endpoints: dict[str, list[str]]


# -- streaming ------------------------------------------------------------------------
MAX_TOOLS_PER_MESSAGE = 32  # names in one message's `tools`
class SendIn(Strict):
    message: str = Field(max_length=1_000_000)
    model: str | None = Field(None, max_length=200)
    parent_id: str | None = Field(None, max_length=64)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    research: bool = False
    tools: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None,
        max_length=MAX_TOOLS_PER_MESSAGE,
        description="Tools the model may call (names from the tool box, e.g. current_time); "
        "only for models with the `tools` feature. Default: none.",
    )


class StreamIn(SendIn):
    chat_id: str | None = Field(None, max_length=64)
    # A new chat (no chat_id) answered by one of my team's agents.
    agent_id: str | None = Field(None, max_length=64)
    system_prompt: str | None = Field(
        None, max_length=20_000,
        description="The new chat's system prompt: only without chat_id (PATCH an existing chat instead)",
    )


class RegenerateIn(Strict):
    model: str | None = Field(None, max_length=200)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)


# One name for one id: `message_id`. `generation_id` repeats it for one release.
DEPRECATED_ALIAS = "deprecated alias of message_id (same value); will be removed"


class AcceptedOut(BaseModel):
    chat_id: str
    message_id: str = Field(description="The answer's id: follow it with GET /api/chats/{id}/events")
    user_message_id: str | None
    generation_id: str = Field(description=DEPRECATED_ALIAS, deprecated=True)


class StopOut(BaseModel):
    stopped: bool
    message_id: str | None = Field(description="The answer that was stopped (None: nothing was running)")
    generation_id: str | None = Field(description=DEPRECATED_ALIAS, deprecated=True)


class ModelOut(BaseModel):
    id: str
    name: str
    provider: str
    features: list[str]
    context_window: int
    max_output_tokens: int
    price_input_per_million: float
    price_output_per_million: float


class ModelListOut(BaseModel):
    items: list[ModelOut]
    default: str | None
