"""The tool box: every tool provider behind one `call`, with the limits of issue 21.

Built by the composition root from the providers (built-in tools, MCP servers) and the
settings (TOOL_TIMEOUT_S, TOOL_RESULT_MAX_CHARS, TOOL_MAX_CALLS, TOOL_APPROVAL_TIMEOUT_S).
A call never raises for a tool's failure and never outlives its timeout: an unknown
name, malformed arguments, a provider that fails or hangs all become an error ToolResult
the model reads, so the answer goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gust.ports.tools import ToolProvider, ToolResult, ToolSpec

log = logging.getLogger(__name__)

# What providers accept as a function name (OpenAI: ^[a-zA-Z0-9_-]{1,64}$); Gust's own
# names (`mcp:<server>/<tool>`) are mapped to such names on the wire and back.
_WIRE_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
WIRE_NAME_MAX = 64
# A provider that does not honour its timeout is abandoned this long after it.
GRACE_SECONDS = 2.0


class ToolSettings(Protocol):
    tool_max_calls: int
    tool_timeout_s: float
    tool_result_max_chars: int
    tool_approval_timeout_s: float


@dataclass(frozen=True, slots=True)
class ToolLimits:
    """TOOL_* settings: calls per answer, seconds per call, characters per result, and
    how long a call waiting for the user's approval waits before it counts as denied."""

    max_calls: int = 8
    timeout: float = 30.0
    result_max_chars: int = 20_000
    approval_timeout: float = 300.0

    @classmethod
    def from_settings(cls, settings: ToolSettings) -> ToolLimits:
        return cls(
            max_calls=settings.tool_max_calls,
            timeout=settings.tool_timeout_s,
            result_max_chars=settings.tool_result_max_chars,
            approval_timeout=settings.tool_approval_timeout_s,
        )


def wire_name(name: str) -> str:
    """A provider-safe function name for Gust's tool name (stable, unique in practice)."""
    safe = _WIRE_UNSAFE.sub("_", name)
    if safe == name and len(name) <= WIRE_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{safe[: WIRE_NAME_MAX - 9]}_{digest}"


def cut_content(content: str, limit: int) -> tuple[str, bool]:
    """`content` within `limit` characters, saying how much was left out."""
    if len(content) <= limit:
        return content, False
    note = f"\n[cut: {len(content) - limit} more characters]"
    keep = max(0, limit - len(note))
    return content[:keep] + note[: limit - keep], True


class ToolBox:
    """The providers' tools under one name space; calls bounded by the limits."""

    def __init__(self, providers: Sequence[ToolProvider], limits: ToolLimits | None = None) -> None:
        self.providers = list(providers)
        self.limits = limits or ToolLimits()
        self._routes: dict[str, ToolProvider] = {}

    async def list_tools(self) -> list[ToolSpec]:
        """Every provider's tools (concurrently; a provider that fails lists none). A name
        offered twice keeps its first provider."""
        listed = await asyncio.gather(*(self._list(p) for p in self.providers))
        routes: dict[str, ToolProvider] = {}
        specs: list[ToolSpec] = []
        for provider, tools in zip(self.providers, listed, strict=True):
            for spec in tools:
                if spec.name in routes:
                    log.warning("tool %s is offered twice; the first provider keeps it", spec.name)
                    continue
                routes[spec.name] = provider
                specs.append(spec)
        self._routes = routes
        return specs

    async def _list(self, provider: ToolProvider) -> list[ToolSpec]:
        try:
            async with asyncio.timeout(self.limits.timeout + GRACE_SECONDS):
                return await provider.list_tools()
        except Exception:
            log.warning("a tool provider failed to list its tools", exc_info=True)
            return []

    async def call(
        self, name: str, arguments: str | dict[str, Any], *, time_limit: float | None = None
    ) -> ToolResult:
        """Run one call: never raises for the tool's failures; cancellation propagates
        (a stop cancels the running call)."""
        started = time.monotonic()
        result = await self._call(name, arguments, time_limit or self.limits.timeout)
        elapsed = int((time.monotonic() - started) * 1000)
        content, cut = cut_content(result.content, self.limits.result_max_chars)
        return ToolResult(ok=result.ok, content=content, elapsed_ms=elapsed, cut=cut or result.cut)

    async def _call(self, name: str, arguments: str | dict[str, Any], time_limit: float) -> ToolResult:
        # Listed, else whoever owns the name (an MCP server that is down says so itself). No
        # re-listing here: a model repeating an unknown name must not reconnect every server.
        provider = self._routes.get(name) or next((p for p in self.providers if p.owns(name)), None)
        if provider is None:
            return ToolResult(False, f"unknown tool '{name[:100]}'")
        parsed = parse_arguments(arguments)
        if isinstance(parsed, ToolResult):
            return parsed
        try:
            # The provider bounds its own call; this is the backstop for one that does not.
            async with asyncio.timeout(time_limit + GRACE_SECONDS):
                return await provider.call(name, parsed, time_limit)
        except TimeoutError:
            return ToolResult(False, f"the tool did not answer within {time_limit:g} s")
        except Exception:
            log.exception("tool %s failed", name)
            return ToolResult(False, "the tool failed unexpectedly")

    async def close(self) -> None:
        for provider in self.providers:
            try:
                await provider.close()
            except Exception:
                log.warning("closing a tool provider failed", exc_info=True)


def parse_arguments(arguments: str | dict[str, Any]) -> dict[str, Any] | ToolResult:
    """The call's arguments as an object, or the error result the model is sent."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        return ToolResult(False, f"the arguments are not valid JSON ({exc.msg} at character {exc.pos})")
    except ValueError:
        return ToolResult(False, "the arguments are not valid JSON")
    if not isinstance(value, dict):
        return ToolResult(False, "the arguments must be a JSON object")
    return value


def function_definitions(specs: Sequence[ToolSpec]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The tools in OpenAI's `tools` shape, with provider-safe names, and the map from those
    names back to Gust's."""
    definitions: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for spec in specs:
        wired = wire_name(spec.name)
        names[wired] = spec.name
        definitions.append(
            {
                "type": "function",
                "function": {"name": wired, "description": spec.description, "parameters": spec.parameters},
            }
        )
    return definitions, names
