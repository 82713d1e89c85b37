"""Assembles OpenAI's streamed `delta.tool_calls` fragments into complete calls.

The format: each chunk's `delta.tool_calls` is a list of fragments
`{index, id?, type?, function: {name?, arguments?}}`. The first fragment of a call carries
its `id` and `function.name`; later ones append to `function.arguments`. Parallel calls
have distinct indexes and may interleave. Providers differ at the edges, all handled:
no `index` (some Gemini versions: the id tells calls apart), the whole name repeated in
every fragment (some vLLM parsers), the arguments in one piece, or missing entirely.

Only answers that call tools pay for this: the adapter creates an assembler on the first
chunk that carries `tool_calls`.
"""

from __future__ import annotations

import json
from typing import Any

from gust.domain.errors import UpstreamError
from gust.ports.llm import ToolCall

# A provider that streams endless calls or arguments is broken: fail the answer rather
# than hold an unbounded amount of memory.
MAX_CALLS = 128
MAX_ARGUMENT_CHARS = 1 << 20


class _Partial:
    __slots__ = ("index", "call_id", "name", "parts", "size")

    def __init__(self, index: int) -> None:
        self.index = index
        self.call_id = ""
        self.name = ""
        self.parts: list[str] = []
        self.size = 0


def _protocol_error(message: str) -> UpstreamError:
    return UpstreamError(message, code="upstream_protocol", retryable=True)


class ToolCallAssembler:
    """Fragments in (`add`), complete calls out (`calls`)."""

    __slots__ = ("_calls", "_last")

    def __init__(self) -> None:
        self._calls: dict[int, _Partial] = {}
        self._last: _Partial | None = None

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, fragments: Any) -> None:
        """One chunk's `delta.tool_calls`; raises UpstreamError on a malformed list."""
        if not isinstance(fragments, list):
            raise _protocol_error("the model provider sent malformed tool calls")
        for fragment in fragments:
            if not isinstance(fragment, dict):
                raise _protocol_error("the model provider sent malformed tool calls")
            self._add(fragment)

    def _find(self, fragment: dict[str, Any]) -> _Partial:
        index = fragment.get("index")
        call_id = fragment.get("id")
        partial: _Partial | None
        if isinstance(index, int) and not isinstance(index, bool):
            slot = index
            partial = self._calls.get(slot)
        elif isinstance(call_id, str) and call_id:
            # No index: a new id starts a new call...
            partial = next((p for p in self._calls.values() if p.call_id == call_id), None)
            slot = max(self._calls, default=-1) + 1
        else:
            # ...and a fragment with neither continues the last one.
            partial = self._last
            slot = max(self._calls, default=-1) + 1
        if partial is None:
            if len(self._calls) >= MAX_CALLS:
                raise _protocol_error("the model provider sent too many tool calls")
            partial = self._calls[slot] = _Partial(slot)
        self._last = partial
        return partial

    def _add(self, fragment: dict[str, Any]) -> None:
        partial = self._find(fragment)
        call_id = fragment.get("id")
        if isinstance(call_id, str) and call_id and not partial.call_id:
            partial.call_id = call_id
        function = fragment.get("function")
        if not isinstance(function, dict):
            return
        name = function.get("name")
        if isinstance(name, str) and name and name != partial.name:
            # A later fragment repeating the whole name is not a second name part.
            partial.name = name if not partial.name or name.startswith(partial.name) else partial.name + name
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            partial.size += len(arguments)
            if partial.size > MAX_ARGUMENT_CHARS:
                raise _protocol_error("the model provider sent tool arguments that are too long")
            partial.parts.append(arguments)
        elif isinstance(arguments, dict):
            # Some servers send the arguments as an object instead of JSON text.
            partial.parts = [json.dumps(arguments, ensure_ascii=False)]

    def calls(self) -> list[ToolCall]:
        """The complete calls in index order; the assembler is empty afterwards."""
        out = [_complete(p) for _, p in sorted(self._calls.items())]
        self._calls.clear()
        self._last = None
        return out


def _complete(partial: _Partial) -> ToolCall:
    arguments = "".join(partial.parts)
    error: str | None = None
    if not partial.name:
        error = "the call names no tool"
    else:
        try:
            value = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            error = "the arguments are not valid JSON"
        else:
            if not isinstance(value, dict):
                error = "the arguments are not a JSON object"
    return ToolCall(
        call_id=partial.call_id or f"call_{partial.index}",
        name=partial.name,
        arguments=arguments,
        index=partial.index,
        error=error,
    )
