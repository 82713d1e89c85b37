"""The tool loop of one answer (issue 21): run the calls the model asked for, send back
their results, ask again, until a text answer or TOOL_MAX_CALLS.

services/generation.py makes a ToolLoop when a message asks for tools and its model has
the `tools` feature; the answer job (services/answer.py) sends the definitions with its
request and, when a round of the stream ends in tool calls, hands them to `run`. Each call
is said as a `tool_call` event, run through the ToolBox (bounded by TOOL_TIMEOUT_S, its
result cut to TOOL_RESULT_MAX_CHARS) and said as a `tool_result` event with a preview of
the result; the events go through the generation's log like every other event, so a
resume (from any process) replays them. The answer stores the same records
(`Message.tool_calls`). A stop cancels the job's task: a running call is cancelled and
recorded as stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from gust.domain.errors import UpstreamError, ValidationError
from gust.domain.events import tool_call_event, tool_result_event
from gust.domain.model_spec import ModelSpec
from gust.ports.llm import ChatRequest, ToolCall
from gust.ports.tools import ToolResult
from gust.services.tools import ToolBox, function_definitions

if TYPE_CHECKING:
    from gust.services.hub import Generation

# Characters of a result the `tool_result` event and the stored answer keep (the model
# gets the whole result, up to TOOL_RESULT_MAX_CHARS).
PREVIEW_CHARS = 2_000
STOPPED = "the call was stopped"


def model_takes_tools(spec: ModelSpec) -> bool:
    """Only models declaring the `tools` feature get tools; the bundled local model never."""
    return "tools" in spec.features and spec.provider != "local"


def refuse_tools(spec: ModelSpec) -> ValidationError:
    return ValidationError(f"the model '{spec.id}' does not support tools", field="tools")


async def check_tools(box: ToolBox, spec: ModelSpec | None, names: Sequence[str]) -> list[str]:
    """The requested tool names, deduplicated in order: each must be one of the box's tools
    and the model must take tools (ValidationError, 422, otherwise)."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return []
    if spec is not None and not model_takes_tools(spec):
        raise refuse_tools(spec)
    known = {tool.name for tool in await box.list_tools()}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise ValidationError(f"unknown tools: {', '.join(n[:100] for n in unknown)}", field="tools")
    return wanted


class ToolLoop:
    """One answer's tools: what the model is offered, the calls made, their records."""

    __slots__ = ("box", "names", "definitions", "wire_names", "calls_made", "records", "usage")

    def __init__(self, box: ToolBox, names: Sequence[str]) -> None:
        self.box = box
        self.names = frozenset(names)  # what this answer may call
        self.definitions: list[dict[str, Any]] = []
        self.wire_names: dict[str, str] = {}  # the name the model uses -> Gust's name
        self.calls_made = 0
        self.records: list[dict[str, Any]] = []  # as stored: Message.tool_calls
        self.usage: dict[str, int] | None = None  # summed over the rounds

    async def prepare(self, request: ChatRequest) -> None:
        """Offer the answer's tools with its first request."""
        specs = [spec for spec in await self.box.list_tools() if spec.name in self.names]
        self.definitions, self.wire_names = function_definitions(specs)
        if self.definitions:
            request.tools = self.definitions

    async def answer(
        self,
        generation: Generation,
        request: ChatRequest,
        next_round: Callable[[], Awaitable[list[ToolCall]]],
        checkpoint: Callable[[], None],
    ) -> None:
        """Offer the tools, then run the calls of each round and ask again, until a round
        ends without calls (a text answer) or the answer's call limit.

        `next_round` streams one answer of the upstream (its text to the log) and gives the
        calls it ends in; `checkpoint` stores the records so far."""
        await self.prepare(request)
        limit = self.box.limits.max_calls
        before = len(generation.log.text())
        calls = await next_round()
        while calls:
            text = generation.log.text()[before:]  # what the model wrote before its calls
            if self.calls_made + len(calls) > limit:
                raise UpstreamError(
                    f"the model asked for more than {limit} tool calls in one answer; it was stopped there",
                    code="tool_call_limit",
                )
            self.calls_made += len(calls)
            results = await self._run_round(generation, calls)
            request.messages.append(
                {
                    "role": "assistant",
                    "content": text or None,
                    "tool_calls": [call.message_part() for call in calls],
                }
            )
            request.messages.extend(
                {"role": "tool", "tool_call_id": call.call_id, "content": result.content}
                for call, result in zip(calls, results, strict=True)
            )
            checkpoint()
            before = len(generation.log.text())
            calls = await next_round()

    async def _run_round(self, generation: Generation, calls: list[ToolCall]) -> list[ToolResult]:
        """The round's calls, run at the same time; results in the calls' order."""
        first = len(self.records)
        for call in calls:
            name = self.wire_names.get(call.name, call.name)
            generation.emit(tool_call_event(call.call_id, name, call.arguments))
            self.records.append({"call_id": call.call_id, "name": name, "arguments": call.arguments})
        return list(
            await asyncio.gather(
                *(self._run_one(generation, call, first + n) for n, call in enumerate(calls))
            )
        )

    async def _run_one(self, generation: Generation, call: ToolCall, slot: int) -> ToolResult:
        record = self.records[slot]
        name: str = record["name"]
        started = time.monotonic()
        try:
            if call.name not in self.wire_names:  # only the tools this answer was offered
                result = ToolResult(False, f"unknown tool '{call.name[:100]}'")
            elif call.error is not None:
                result = ToolResult(False, f"invalid arguments: {call.error}; send a JSON object")
            else:
                result = await self.box.call(name, call.arguments)
        except asyncio.CancelledError:
            self._finish(generation, record, ToolResult(False, STOPPED), started)
            raise
        self._finish(generation, record, result, started)
        return result

    def _finish(
        self, generation: Generation, record: dict[str, Any], result: ToolResult, started: float
    ) -> None:
        elapsed = result.elapsed_ms or int((time.monotonic() - started) * 1000)
        preview = result.content[:PREVIEW_CHARS]
        record.update(ok=result.ok, content=preview, elapsed_ms=elapsed)
        generation.emit(tool_result_event(record["call_id"], result.ok, preview, elapsed))

    def add_usage(self, usage: dict[str, int] | None) -> dict[str, int] | None:
        """The usage of every round so far, with this round's (one usage chunk a round)."""
        if not usage:
            return self.usage
        total = dict(self.usage or {})
        for key, value in usage.items():
            if isinstance(value, int) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
        self.usage = total
        return total

    def stored(self) -> list[dict[str, Any]]:
        """The records as the answer stores them (a call still running has no result yet)."""
        return [dict(r) for r in self.records if "ok" in r]
