"""The tools port: functions a model may call, from built-in providers and MCP servers.

A provider lists its tools (name, description, JSON schema of the arguments) and runs one
call at a time within a timeout. A failure is never an exception to the caller: it is a
ToolResult with `ok=False` and a short human message the model reads as the result, so
the answer goes on (the model may retry or explain). services/tools.ToolBox puts the
providers together, cuts results to TOOL_RESULT_MAX_CHARS and bounds every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Approval = Literal["auto", "ask"]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool as users and models see it.

    `name` is Gust's name for it (`current_time`, `mcp:<server>/<tool>`); `parameters` is
    the JSON schema of its arguments (an object schema)."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    approval: Approval = "auto"


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a call gave back: `content` is the text the model is sent (an error message
    when `ok` is false); `elapsed_ms` is the call's own time; `cut` says the content was
    shortened to the result limit."""

    ok: bool
    content: str
    elapsed_ms: int = 0
    cut: bool = False


class ToolProvider(Protocol):
    """A source of tools (the built-ins, one MCP server)."""

    async def list_tools(self) -> list[ToolSpec]:
        """The tools available now (an unreachable MCP server lists none and says why in
        its status; it never raises)."""
        ...

    def owns(self, name: str) -> bool:
        """Whether `name` is this provider's, listed or not (an unreachable MCP server owns
        `mcp:<its name>/...`, so a call says why it failed rather than "unknown tool")."""
        ...

    async def call(self, name: str, arguments: dict[str, Any], time_limit: float) -> ToolResult:
        """Run one of this provider's tools (`name` as listed) within `time_limit` seconds.

        Never raises for the tool's own failures (unreachable, timed out, refused, bad
        arguments): those are ToolResult(ok=False, content=why). Cancellation propagates."""
        ...

    async def close(self) -> None:
        """Release connections (and sessions)."""
        ...
