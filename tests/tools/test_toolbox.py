"""The ToolBox's promises, whatever a provider does: unknown names, malformed arguments,
providers that fail, ignore their time limit or offer a name twice all end in a result."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from gust.adapters.tools.builtin import BuiltinTools
from gust.ports.tools import ToolResult, ToolSpec
from gust.services.tools import ToolBox, ToolLimits, cut_content, function_definitions, wire_name


class SlowProvider:
    """A provider that ignores its time limit (a broken plug-in), or fails outright."""

    def __init__(self, *, fail: bool = False) -> None:
        self.fail = fail
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def list_tools(self) -> list[ToolSpec]:
        return [ToolSpec("stuck", "never answers"), ToolSpec("current_time", "a second current_time")]

    async def call(self, name: str, arguments: dict[str, Any], time_limit: float) -> ToolResult:
        if self.fail:
            raise RuntimeError("secret internal detail")
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return ToolResult(True, "unreachable")

    def owns(self, name: str) -> bool:
        return name in ("stuck", "current_time")

    async def close(self) -> None:
        return None


class BrokenLister(SlowProvider):
    async def list_tools(self) -> list[ToolSpec]:
        raise ConnectionError("down")


async def test_unknown_tools_and_malformed_arguments_are_error_results() -> None:
    box = ToolBox([BuiltinTools()])
    unknown = await box.call("rm_rf", "{}")
    assert not unknown.ok and unknown.content == "unknown tool 'rm_rf'"
    for arguments, expected in [
        ('{"timezone": "UT', "the arguments are not valid JSON"),
        ("[1, 2]", "the arguments must be a JSON object"),
        ('"text"', "the arguments must be a JSON object"),
    ]:
        result = await box.call("current_time", arguments)
        assert not result.ok and result.content.startswith(expected), result.content
    assert (await box.call("current_time", "")).ok  # no arguments at all: an empty object


async def test_a_provider_that_ignores_its_time_limit_is_abandoned() -> None:
    slow = SlowProvider()
    box = ToolBox([slow], ToolLimits(timeout=0.1))
    await box.list_tools()
    result = await box.call("stuck", "{}")
    assert not result.ok and result.content == "the tool did not answer within 0.1 s"
    assert slow.cancelled.is_set()  # the abandoned call was cancelled, not left running


async def test_a_provider_that_raises_gives_a_plain_error() -> None:
    box = ToolBox([SlowProvider(fail=True)])
    result = await box.call("stuck", {})
    assert not result.ok and result.content == "the tool failed unexpectedly"
    assert "secret" not in result.content


async def test_a_stop_cancels_the_running_call() -> None:
    slow = SlowProvider()
    box = ToolBox([slow], ToolLimits(timeout=30))
    await box.list_tools()
    task = asyncio.ensure_future(box.call("stuck", {}))
    await asyncio.wait_for(slow.started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slow.cancelled.is_set()


async def test_first_provider_keeps_a_name_and_a_failing_lister_lists_nothing() -> None:
    box = ToolBox([BuiltinTools(), SlowProvider(), BrokenLister()])
    names = [t.name for t in await box.list_tools()]
    assert names == ["current_time", "stuck"]
    assert (await box.call("current_time", {})).ok  # the built-in one, not the slow one


def test_results_are_cut_within_the_limit() -> None:
    assert cut_content("short", 10) == ("short", False)
    text, cut = cut_content("x" * 1000, 200)
    assert cut and len(text) <= 200 and text.endswith("[cut: 800 more characters]")


def test_wire_names_are_provider_safe_and_map_back() -> None:
    specs = [
        ToolSpec("current_time", ""),
        ToolSpec("mcp:files server/read.file", ""),
        ToolSpec("mcp:" + "x" * 80, ""),
    ]
    definitions, names = function_definitions(specs)
    wired = [d["function"]["name"] for d in definitions]
    assert wired[0] == "current_time"
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,64}", w) for w in wired)
    assert len(set(wired)) == 3
    assert [names[w] for w in wired] == [s.name for s in specs]
    assert wire_name("mcp:a/b") != wire_name("mcp_a_b")  # no collision with a name that looks alike
