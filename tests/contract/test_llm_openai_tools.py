"""Function calling through the OpenAI-compatible adapter, against the scripted fake upstream.

The fake streams tool calls in OpenAI's delta format (index, id, type, name, argument
fragments; parallel calls interleaved; finish_reason `tool_calls`); the official `openai`
client reading the same fake checks that the fake speaks that format as OpenAI does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from gust.adapters.llm.openai_compat import OpenAICompatLLM
from gust.adapters.llm.sessions import SessionPool
from gust.adapters.llm.tool_calls import ToolCallAssembler
from gust.domain.errors import UpstreamError
from gust.ports.llm import ChatRequest, Chunk, ToolCall
from tests.support.fake_upstream import FakeUpstream, Script, ScriptedCall

KEY = "sk-test-tools"
QUESTION: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris and Tokyo?"}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = await FakeUpstream(api_key=KEY).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def llm(upstream: FakeUpstream) -> AsyncIterator[OpenAICompatLLM]:
    pool = SessionPool(connect_timeout=5)
    yield OpenAICompatLLM(upstream.url, KEY, pool, first_token_timeout=5.0, idle_timeout=5.0)
    await pool.close()


async def collect(llm: OpenAICompatLLM, messages: list[dict[str, Any]] | None = None) -> list[Chunk]:
    request = ChatRequest(
        model="fake-model", messages=messages or QUESTION, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    return [chunk async for chunk in llm.stream(request)]


def calls(chunks: list[Chunk]) -> list[ToolCall]:
    return [c.tool_call for c in chunks if c.kind == "tool_call" and c.tool_call is not None]


def kinds(chunks: list[Chunk]) -> list[str]:
    out: list[str] = []
    for c in chunks:
        if not out or out[-1] != c.kind:
            out.append(c.kind)
    return out


async def test_single_call_is_assembled_before_the_finish(
    upstream: FakeUpstream, llm: OpenAICompatLLM
) -> None:
    arguments = '{"city": "Paris, Île-de-France"}'
    upstream.script = Script.calling(ScriptedCall("get_weather", arguments, call_id="call_abc"))
    chunks = await collect(llm)
    assert kinds(chunks) == ["tool_delta", "tool_call", "finish", "usage"]
    assert calls(chunks) == [ToolCall("call_abc", "get_weather", arguments, index=0)]
    assert calls(chunks)[0].ok
    finish = next(c for c in chunks if c.kind == "finish")
    assert finish.finish_reason == "tool_calls"
    # The raw fragments are passed on too, exactly as streamed (for relays such as /v1).
    deltas = [d for c in chunks if c.kind == "tool_delta" for d in c.tool_deltas or []]
    assert "".join(d["function"]["arguments"] for d in deltas) == arguments
    assert deltas[0] == {
        "index": 0,
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": arguments[:7]},
    }
    sent = upstream.requests[-1]
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["tool_choice"] == "auto"


async def test_parallel_interleaved_calls_come_out_whole_in_index_order(
    upstream: FakeUpstream, llm: OpenAICompatLLM
) -> None:
    scripted = [
        ScriptedCall("get_weather", '{"city": "Paris"}'),
        ScriptedCall("get_weather", '{"city": "東京", "units": "metric"}'),
        ScriptedCall("get_time", '{"zone": "Asia/Tokyo"}'),
    ]
    upstream.script = Script.calling(*scripted, tool_fragment=3)
    chunks = await collect(llm)
    got = calls(chunks)
    assert [(c.index, c.name, c.arguments) for c in got] == [
        (i, s.name, s.arguments) for i, s in enumerate(scripted)
    ]
    assert len({c.call_id for c in got}) == 3
    assert all(c.ok for c in got)
    # The fragments really did interleave (the point of this test).
    order = [d["index"] for c in chunks if c.kind == "tool_delta" for d in c.tool_deltas or []]
    assert order[:4] == [0, 1, 2, 0]


async def test_finish_on_the_last_fragments_chunk(upstream: FakeUpstream, llm: OpenAICompatLLM) -> None:
    scripted = [ScriptedCall("get_weather", '{"city": "Rome"}'), ScriptedCall("get_time", "{}")]
    upstream.script = Script.calling(*scripted, finish_in_last_fragment=True)
    chunks = await collect(llm)
    assert kinds(chunks) == ["tool_delta", "tool_call", "finish", "usage"]
    assert [(c.name, c.arguments) for c in calls(chunks)] == [(s.name, s.arguments) for s in scripted]


async def test_done_without_a_finish_reason_still_yields_the_calls(
    upstream: FakeUpstream, llm: OpenAICompatLLM
) -> None:
    upstream.script = Script.calling(ScriptedCall("get_weather", '{"city": "Lima"}'), omit_finish=True)
    chunks = await collect(llm)
    assert kinds(chunks) == ["tool_delta", "usage", "tool_call"]
    assert [c.arguments for c in calls(chunks)] == ['{"city": "Lima"}']


async def test_text_before_the_calls_is_kept(upstream: FakeUpstream, llm: OpenAICompatLLM) -> None:
    upstream.script = Script(tokens=["Let me ", "check."], tool_calls=[ScriptedCall("get_weather", "{}")])
    chunks = await collect(llm)
    assert kinds(chunks) == ["delta", "tool_delta", "tool_call", "finish", "usage"]
    assert "".join(c.text for c in chunks if c.kind == "delta") == "Let me check."
    assert calls(chunks)[0].arguments == "{}" and calls(chunks)[0].ok


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ('{"city": "Par', "the arguments are not valid JSON"),
        ("[1, 2]", "the arguments are not a JSON object"),
        ("not json at all", "the arguments are not valid JSON"),
    ],
)
async def test_malformed_arguments_are_flagged_not_raised(
    upstream: FakeUpstream, llm: OpenAICompatLLM, arguments: str, error: str
) -> None:
    upstream.script = Script.calling(
        ScriptedCall("get_weather", arguments), ScriptedCall("get_weather", "{}")
    )
    chunks = await collect(llm)
    bad, good = calls(chunks)
    assert bad.arguments == arguments  # the raw text, for the message sent back to the model
    assert bad.error == error and not bad.ok
    assert good.ok
    assert kinds(chunks)[-2:] == ["finish", "usage"]


async def test_empty_arguments_mean_an_empty_object(upstream: FakeUpstream, llm: OpenAICompatLLM) -> None:
    upstream.script = Script.calling(ScriptedCall("current_time", ""))
    (call,) = calls(await collect(llm))
    assert call.ok and call.arguments == ""


async def test_an_unknown_tool_name_is_reported_as_named(
    upstream: FakeUpstream, llm: OpenAICompatLLM
) -> None:
    # Assembly does not judge names: the caller answers an unknown tool with an error result.
    upstream.script = Script.calling(ScriptedCall("rm_rf_everything", '{"path": "/"}'))
    (call,) = calls(await collect(llm))
    assert call.name == "rm_rf_everything" and call.ok


async def test_fragments_without_index_and_with_repeated_names(
    upstream: FakeUpstream, llm: OpenAICompatLLM
) -> None:
    scripted = [ScriptedCall("get_weather", '{"city": "Oslo"}'), ScriptedCall("get_time", '{"zone": "UTC"}')]
    upstream.script = Script.calling(*scripted, omit_tool_index=True, repeat_tool_name=True, interleave=False)
    got = calls(await collect(llm))
    assert [(c.name, c.arguments, c.ok) for c in got] == [(s.name, s.arguments, True) for s in scripted]


async def test_results_reach_the_upstream_as_tool_messages(
    upstream: FakeUpstream, llm: OpenAICompatLLM
) -> None:
    upstream.script = Script.calling(
        ScriptedCall("get_weather", '{"city": "Paris"}', call_id="call_1"), then=Script(tokens=["Sunny."])
    )
    first = await collect(llm)
    (call,) = calls(first)
    history = [
        *QUESTION,
        {"role": "assistant", "content": None, "tool_calls": [call.message_part()]},
        {"role": "tool", "tool_call_id": call.call_id, "content": '{"sky": "clear"}'},
    ]
    second = await collect(llm, history)
    assert "".join(c.text for c in second if c.kind == "delta") == "Sunny."
    assert not calls(second)
    assert upstream.tool_messages() == [
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "clear"}'}
    ]
    assert upstream.requests[-1]["messages"][1]["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]


async def test_a_model_that_never_stops_calls_again_every_time(
    upstream: FakeUpstream, llm: OpenAICompatLLM
) -> None:
    upstream.script = Script.calling(ScriptedCall("get_weather", '{"city": "Paris"}'))
    history = list(QUESTION)
    for _ in range(3):
        (call,) = calls(await collect(llm, history))
        history += [
            {"role": "assistant", "content": None, "tool_calls": [call.message_part()]},
            {"role": "tool", "tool_call_id": call.call_id, "content": "ok"},
        ]
    assert len(upstream.tool_messages()) == 2
    assert len({m["tool_call_id"] for m in upstream.tool_messages()}) == 2


async def test_no_tools_in_the_request_sends_no_tools_field(
    upstream: FakeUpstream, llm: OpenAICompatLLM
) -> None:
    chunks = [
        c async for c in llm.stream(ChatRequest(model="fake-model", messages=QUESTION, tool_choice="auto"))
    ]
    assert kinds(chunks) == ["delta", "finish", "usage"]
    assert "tools" not in upstream.requests[-1] and "tool_choice" not in upstream.requests[-1]


async def test_official_client_reads_the_fakes_tool_call_stream(upstream: FakeUpstream) -> None:
    scripted = [ScriptedCall("get_weather", '{"city": "Paris"}'), ScriptedCall("get_time", '{"zone": "UTC"}')]
    upstream.script = Script.calling(*scripted, tool_fragment=2)
    client = openai.AsyncOpenAI(base_url=upstream.url, api_key=KEY)
    try:
        async with client.chat.completions.stream(
            model="fake-model",
            messages=[{"role": "user", "content": "hi"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        ) as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_completion()
        message = final.choices[0].message
        assert final.choices[0].finish_reason == "tool_calls"
        assert [(t.function.name, t.function.arguments) for t in message.tool_calls or []] == [
            (s.name, s.arguments) for s in scripted
        ]
        plain = await client.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": "hi"}],
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        )
        assert [json.loads(t.function.arguments) for t in plain.choices[0].message.tool_calls or []] == [  # type: ignore[union-attr]
            {"city": "Paris"},
            {"zone": "UTC"},
        ]
    finally:
        await client.close()


# -- the assembler on fragments no fake sends ----------------------------------------------
def test_assembler_refuses_malformed_fragment_lists() -> None:
    for bad in ({"index": 0}, ["not a dict"], "text"):
        with pytest.raises(UpstreamError) as info:
            ToolCallAssembler().add(bad)
        assert info.value.code == "upstream_protocol"


def test_assembler_bounds_calls_and_argument_size() -> None:
    many = ToolCallAssembler()
    with pytest.raises(UpstreamError):
        for i in range(1000):
            many.add([{"index": i, "id": f"c{i}", "function": {"name": "t", "arguments": "{}"}}])
    long = ToolCallAssembler()
    with pytest.raises(UpstreamError):
        for _ in range(200):
            long.add([{"index": 0, "function": {"arguments": "x" * 10_000}}])


def test_assembler_names_nameless_calls_as_errors_and_reads_object_arguments() -> None:
    assembler = ToolCallAssembler()
    assembler.add([{"index": 0, "id": "a", "function": {"arguments": "{}"}}])
    assembler.add([{"index": 1, "id": "b", "function": {"name": "t", "arguments": {"k": 1}}}])
    nameless, objected = assembler.calls()
    assert nameless.error == "the call names no tool"
    assert objected.ok and json.loads(objected.arguments) == {"k": 1}
    assert not assembler  # emptied by calls()
