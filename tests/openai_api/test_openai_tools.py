"""Client-side tools through `/v1/chat/completions`: the official `openai` client runs tool
conversations through the real app against the scripted fake upstream."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import (
    ChatCompletionMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionToolParam,
)

from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script, ScriptedCall

StartApp = Callable[..., Awaitable[RunningApp]]

WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Paris, and the time?"}]


@pytest.fixture
async def tools_app(start_stream_app: StartApp, upstream: FakeUpstream, tmp_path: Path) -> RunningApp:
    """The app with two models on the fake: `fake-model` declares tools, `no-tools` does not."""
    path = tmp_path / "models-tools.json"
    base = {"provider": "openai", "base_url": upstream.url, "context_window": 8192}
    path.write_text(
        json.dumps(
            {
                "models": [
                    {"id": "fake-model", "features": ["streaming", "tools"], **base},
                    {"id": "no-tools", **base},
                ]
            }
        )
    )
    return await start_stream_app(models_file=path, max_message_chars=2000)


@pytest.fixture
async def key(tools_app: RunningApp, http: aiohttp.ClientSession) -> str:
    user: Api = await tools_app.sign_up(http, "tools@example.com")
    created = await user.post("/api/auth/api-keys", {"name": "script"})
    assert created.status == 201, created.text
    value: str = created.json["key"]
    return value


def client(app: RunningApp, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=app.url + "/v1", api_key=key, max_retries=0)


def run_tool(name: str, arguments: str) -> str:
    """The client's own tools."""
    args = json.loads(arguments)
    if name == "get_weather":
        return json.dumps({"city": args["city"], "sky": "clear", "celsius": 21})
    return json.dumps({"utc": "2026-12-07T22:00:00Z"})


async def test_two_step_streamed_tool_conversation(
    tools_app: RunningApp, key: str, upstream: FakeUpstream
) -> None:
    scripted = [ScriptedCall("get_weather", '{"city": "Paris"}'), ScriptedCall("get_time", "{}")]
    upstream.script = Script.calling(*scripted, tool_fragment=4, then=Script(tokens=["Sunny, ", "21 °C."]))
    oai = client(tools_app, key)
    try:
        # Step 1: the model asks for two tools; the deltas come through unchanged.
        stream = await oai.chat.completions.create(
            model="fake-model", messages=QUESTION, tools=[WEATHER, TIME], tool_choice="auto", stream=True
        )
        fragments: list[dict[str, Any]] = []
        finish = None
        async for chunk in stream:
            if chunk.choices:
                for delta in chunk.choices[0].delta.tool_calls or []:
                    fragments.append(delta.model_dump(exclude_none=True))
                finish = chunk.choices[0].finish_reason or finish
        assert finish == "tool_calls"
        # Exactly the fake's fragments, in its interleaved order.
        assert [f["index"] for f in fragments][:4] == [0, 1, 0, 0]
        calls: dict[int, dict[str, str]] = {}
        for f in fragments:
            call = calls.setdefault(f["index"], {"id": "", "name": "", "arguments": ""})
            call["id"] = call["id"] or f.get("id", "")
            call["name"] += f.get("function", {}).get("name", "")
            call["arguments"] += f.get("function", {}).get("arguments", "")
        assert [(c["name"], c["arguments"]) for c in calls.values()] == [
            (s.name, s.arguments) for s in scripted
        ]
        sent = upstream.requests[-1]
        assert sent["tools"] == [WEATHER, TIME] and sent["tool_choice"] == "auto"

        # Step 2: the client runs the tools and sends the results back.
        history: list[ChatCompletionMessageParam] = [
            *QUESTION,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in calls.values()
                ],
            },
        ]
        for c in calls.values():
            result: ChatCompletionToolMessageParam = {
                "role": "tool",
                "tool_call_id": c["id"],
                "content": run_tool(c["name"], c["arguments"]),
            }
            history.append(result)
        answer = await oai.chat.completions.create(
            model="fake-model", messages=history, tools=[WEATHER, TIME], stream=True
        )
        text = [chunk.choices[0].delta.content or "" async for chunk in answer if chunk.choices]
        assert "".join(text) == "Sunny, 21 °C."
    finally:
        await oai.close()
    # The results reached the upstream as `tool` messages, after the assistant's calls.
    assert upstream.tool_messages() == [
        {"role": "tool", "tool_call_id": c["id"], "content": run_tool(c["name"], c["arguments"])}
        for c in calls.values()
    ]
    assistant = upstream.requests[-1]["messages"][1]
    assert assistant["role"] == "assistant" and assistant["content"] is None
    assert [t["id"] for t in assistant["tool_calls"]] == [c["id"] for c in calls.values()]


async def test_two_step_tool_conversation_without_streaming(
    tools_app: RunningApp, key: str, upstream: FakeUpstream
) -> None:
    upstream.script = Script.calling(
        ScriptedCall("get_weather", '{"city": "Tokyo"}', call_id="call_w"), then=Script(tokens=["Clear."])
    )
    oai = client(tools_app, key)
    try:
        first = await oai.chat.completions.create(model="fake-model", messages=QUESTION, tools=[WEATHER])
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        (call,) = choice.message.tool_calls or []
        assert call.id == "call_w" and call.type == "function"
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
            "city": "Tokyo"
        }
        history: list[ChatCompletionMessageParam] = [
            *QUESTION,
            choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "clear sky"},
        ]
        second = await oai.chat.completions.create(model="fake-model", messages=history, tools=[WEATHER])
        assert second.choices[0].message.content == "Clear."
        assert second.choices[0].finish_reason == "stop"
    finally:
        await oai.close()
    assert upstream.tool_messages() == [{"role": "tool", "tool_call_id": "call_w", "content": "clear sky"}]


async def test_malformed_arguments_come_back_unchanged(
    tools_app: RunningApp, key: str, upstream: FakeUpstream
) -> None:
    # Client-side tools: the client judges the arguments, as with OpenAI itself.
    upstream.script = Script.calling(ScriptedCall("get_weather", '{"city": "Par'))
    oai = client(tools_app, key)
    try:
        done = await oai.chat.completions.create(model="fake-model", messages=QUESTION, tools=[WEATHER])
    finally:
        await oai.close()
    (call,) = done.choices[0].message.tool_calls or []
    assert call.function.arguments == '{"city": "Par'  # type: ignore[union-attr]


def tool_msgs(call_id: str = "c1") -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "noon"},
    ]


def many_tools(n: int, description: str = "") -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": f"t{i}", "description": description}} for i in range(n)]


HI = [{"role": "user", "content": "hi"}]
BAD_REQUESTS: list[tuple[str, dict[str, Any], str | None]] = [
    (
        "tool message without tool_call_id",
        {"messages": [*HI, {"role": "tool", "content": "x"}]},
        "messages.1",
    ),
    (
        "tool result for a call never made",
        {"messages": [*HI, {"role": "tool", "tool_call_id": "zz", "content": "x"}]},
        "messages.1.tool_call_id",
    ),
    (
        "result before its call",
        {"messages": [tool_msgs()[0], tool_msgs()[2], tool_msgs()[1]]},
        "messages.1.tool_call_id",
    ),
    (
        "tool_calls on a user message",
        {"messages": [{"role": "user", "content": "x", "tool_calls": tool_msgs()[1]["tool_calls"]}]},
        "messages.0",
    ),
    ("null content without tool_calls", {"messages": [{"role": "user", "content": None}]}, "messages.0"),
    ("tool_choice without tools", {"messages": HI, "tool_choice": "required"}, "tool_choice"),
    (
        "tool_choice naming an absent tool",
        {
            "messages": HI,
            "tools": many_tools(1),
            "tool_choice": {"type": "function", "function": {"name": "nope"}},
        },
        "tool_choice",
    ),
    (
        "unknown tool_choice word",
        {"messages": HI, "tools": many_tools(1), "tool_choice": "always"},
        "tool_choice",
    ),
    ("duplicate tool names", {"messages": HI, "tools": many_tools(1) + many_tools(1)}, "tools"),
    (
        "tool name with spaces",
        {"messages": HI, "tools": [{"type": "function", "function": {"name": "rm -rf"}}]},
        "tools.0.function.name",
    ),
    (
        "tool name too long",
        {"messages": HI, "tools": [{"type": "function", "function": {"name": "x" * 65}}]},
        "tools.0.function.name",
    ),
    (
        "not a function tool",
        {"messages": HI, "tools": [{"type": "code_interpreter", "function": {"name": "x"}}]},
        "tools.0.type",
    ),
    (
        "parameters not an object",
        {"messages": HI, "tools": [{"type": "function", "function": {"name": "x", "parameters": [1]}}]},
        "tools.0.function.parameters",
    ),
    ("too many tools", {"messages": HI, "tools": many_tools(129)}, "tools"),
    ("tool definitions too large", {"messages": HI, "tools": many_tools(100, "d" * 7000)}, "tools"),
    (
        "arguments beyond MAX_MESSAGE_CHARS",
        {
            "messages": [
                HI[0],
                {
                    **tool_msgs()[1],
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": "x" * 2500},
                        }
                    ],
                },
            ]
        },
        "messages.1.content",
    ),
    (
        "tools for a model without the tools feature",
        {"model": "no-tools", "messages": HI, "tools": many_tools(1)},
        "tools",
    ),
]


@pytest.mark.parametrize(("case", "body", "param"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
async def test_malformed_tool_requests_are_clear_400s(
    tools_app: RunningApp,
    key: str,
    upstream: FakeUpstream,
    http: aiohttp.ClientSession,
    case: str,
    body: dict[str, Any],
    param: str | None,
) -> None:
    for stream in (False, True):
        request = {"model": "fake-model", "stream": stream, **body}
        headers = {"Authorization": f"Bearer {key}"}
        async with http.post(tools_app.url + "/v1/chat/completions", json=request, headers=headers) as resp:
            answer = await resp.json()
            assert resp.status == 400, (case, answer)
            assert resp.content_type == "application/json"
        error = answer["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error" and error["message"]
        assert error["param"] is not None and error["param"].startswith(param or ""), (case, error)
    assert upstream.requests == []  # nothing malformed ever reaches the provider


async def test_tool_definitions_reach_the_provider_as_sent(
    tools_app: RunningApp, key: str, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "description": "d",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "additionalProperties": False,
            },
            "strict": True,
            "x_provider_hint": {"cache": "ephemeral"},  # a field Gust does not know
        },
        "x_extra": 1,
    }
    body = {"model": "fake-model", "messages": HI, "tools": [tool], "parallel_tool_calls": False}
    headers = {"Authorization": f"Bearer {key}"}
    async with http.post(tools_app.url + "/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
    sent = upstream.requests[-1]
    assert sent["tools"] == [tool]
    assert sent["parallel_tool_calls"] is False


async def test_valid_tool_history_without_tools_is_passed_on(
    tools_app: RunningApp, key: str, upstream: FakeUpstream
) -> None:
    # A finished tool exchange may be continued without offering tools again (OpenAI allows it).
    oai = client(tools_app, key)
    try:
        done = await oai.chat.completions.create(model="no-tools", messages=tool_msgs())  # type: ignore[arg-type]
    finally:
        await oai.close()
    assert done.choices[0].message.content
    sent = upstream.requests[-1]
    assert "tools" not in sent
    assert sent["messages"] == tool_msgs()
