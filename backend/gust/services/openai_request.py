"""The request of `/v1/chat/completions`, checked for shape and size (client-side tools too).

Client-side tools, as on OpenAI's API: the client owns the tools. Gust sends `tools`,
`tool_choice` and the conversation's assistant `tool_calls` and `tool` results to the
provider unchanged (fields of a tool definition it does not know included), and streams
the provider's `tool_calls` deltas back unchanged. What is checked here is shape and size,
so a malformed request is a clear 400 from Gust rather than the provider's.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import pydantic

# OpenAI's limits: at most 128 tools, names of letters, digits, `_` and `-` up to 64
# characters (`.` and `:` too: some providers and MCP-style names use them).
MAX_TOOLS = 128
MAX_TOOL_CALLS_PER_MESSAGE = 128
MAX_TOOLS_JSON_CHARS = 512_000  # all tool definitions together, as JSON
MAX_DESCRIPTION_CHARS = 8_000
MAX_ID_CHARS = 200
TOOL_NAME = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_MESSAGES = 1000


class FunctionDef(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")  # passed on as sent
    name: str = pydantic.Field(pattern=TOOL_NAME)
    description: str | None = pydantic.Field(None, max_length=MAX_DESCRIPTION_CHARS)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDef(pydantic.BaseModel):
    """One entry of `tools`: only function tools exist in the chat-completions API."""

    model_config = pydantic.ConfigDict(extra="allow")  # passed on as sent
    type: Literal["function"]
    function: FunctionDef


class ChoiceFunction(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    name: str = pydantic.Field(pattern=TOOL_NAME)


class NamedToolChoice(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    type: Literal["function"]
    function: ChoiceFunction


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class CalledFunction(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    name: str = pydantic.Field(pattern=TOOL_NAME)
    arguments: str  # JSON text as the model wrote it; its size counts as message content


class InToolCall(pydantic.BaseModel):
    """A call of an earlier assistant message, sent back as the conversation's history."""

    model_config = pydantic.ConfigDict(extra="ignore")
    id: str = pydantic.Field(min_length=1, max_length=MAX_ID_CHARS)
    type: Literal["function"] = "function"
    function: CalledFunction

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.function.name, "arguments": self.function.arguments},
        }


class TextPart(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class InMessage(pydantic.BaseModel):
    """A message of the conversation: `tool` results answer an assistant's `tool_calls`."""

    model_config = pydantic.ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "developer", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[InToolCall] | None = pydantic.Field(None, max_length=MAX_TOOL_CALLS_PER_MESSAGE)
    tool_call_id: str | None = pydantic.Field(None, min_length=1, max_length=200)

    @pydantic.model_validator(mode="after")
    def _tool_fields_fit_the_role(self) -> InMessage:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.role == "tool" and self.tool_call_id is None:
            raise ValueError("a tool message needs the tool_call_id it answers")
        if self.role != "tool" and self.tool_call_id is not None:
            raise ValueError("only tool messages carry a tool_call_id")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError("content is required (it may be null only beside tool_calls)")
        return self

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)

    def size(self) -> int:
        """Characters counted against MAX_MESSAGE_CHARS: the text and the call arguments."""
        return len(self.text()) + sum(len(call.function.arguments) for call in self.tool_calls or ())

    def wire(self) -> dict[str, Any]:
        """The message as the provider is sent it."""
        role = "system" if self.role == "developer" else self.role
        if role == "tool":
            return {"role": "tool", "tool_call_id": self.tool_call_id, "content": self.text()}
        if role == "assistant" and self.tool_calls:
            return {
                "role": "assistant",
                "content": self.text() or None,
                "tool_calls": [call.wire() for call in self.tool_calls],
            }
        return {"role": role, "content": self.text()}


class StreamOptions(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore")
    include_usage: bool = False


class CompletionIn(pydantic.BaseModel):
    """OpenAI's chat-completions request; parameters Gust does not use are ignored."""

    model_config = pydantic.ConfigDict(extra="ignore")
    model: str = pydantic.Field(min_length=1, max_length=200)
    messages: list[InMessage] = pydantic.Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = pydantic.Field(None, ge=0, le=2)
    max_tokens: int | None = pydantic.Field(None, ge=1)
    max_completion_tokens: int | None = pydantic.Field(None, ge=1)
    tools: list[ToolDef] | None = pydantic.Field(None, max_length=MAX_TOOLS)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None


class ToolRequestError(Exception):
    """A tool field that the shape checks let through but the request as a whole refuses."""

    def __init__(self, message: str, param: str, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


def tools_payload(
    tools: list[ToolDef] | None, tool_choice: ToolChoice | None, *, supported: bool
) -> tuple[list[dict[str, Any]] | None, str | dict[str, Any] | None]:
    """The `tools` and `tool_choice` sent upstream; raises ToolRequestError."""
    if not tools:
        if tool_choice is not None and tool_choice != "none":
            raise ToolRequestError("tool_choice is only allowed when tools are specified", "tool_choice")
        return None, None
    if not supported:
        raise ToolRequestError(
            "this model does not support tools (its models-file entry lacks the 'tools' feature)",
            "tools",
            "tools_not_supported",
        )
    names = [tool.function.name for tool in tools]
    if len(set(names)) != len(names):
        raise ToolRequestError("tool names must be unique", "tools")
    payload = [tool.model_dump(exclude_none=True) for tool in tools]
    if len(json.dumps(payload, ensure_ascii=False)) > MAX_TOOLS_JSON_CHARS:
        raise ToolRequestError(
            f"the tool definitions are larger than {MAX_TOOLS_JSON_CHARS} characters", "tools",
            "tools_too_large",
        )
    choice: str | dict[str, Any] | None = None
    if isinstance(tool_choice, NamedToolChoice):
        if tool_choice.function.name not in names:
            raise ToolRequestError(
                f"tool_choice names '{tool_choice.function.name}', which is not in tools", "tool_choice"
            )
        choice = tool_choice.model_dump()
    elif tool_choice is not None:
        choice = tool_choice
    return payload, choice


def check_tool_results(messages: list[tuple[str, list[InToolCall] | None, str | None]]) -> None:
    """Every `tool` message must answer a call of an earlier assistant message, as OpenAI
    requires: (role, tool_calls, tool_call_id) per message, in order."""
    called: set[str] = set()
    for i, (role, calls, tool_call_id) in enumerate(messages):
        if calls:
            called.update(call.id for call in calls)
        if role == "tool" and tool_call_id not in called:
            raise ToolRequestError(
                f"messages[{i}] is a tool result for '{tool_call_id}', which no earlier assistant "
                "message called",
                f"messages.{i}.tool_call_id",
            )
