"""The OpenAI-compatible adapter against a real local server speaking the streaming protocol.

The same fake is also read by the official `openai` client, which checks that the fake
itself speaks the protocol correctly (streaming and non-streaming).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import openai
import pytest

from gust.adapters.llm.openai_compat import OpenAICompatLLM
from gust.adapters.llm.sessions import SessionPool
from gust.domain.errors import UpstreamError
from gust.ports.llm import ChatRequest, Chunk
from tests.support.env import free_port
from tests.support.fake_upstream import DEFAULT_TOKENS, FakeUpstream, Script
from tests.support.wait import until

KEY = "sk-test-contract"
QUESTION = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = await FakeUpstream(api_key=KEY).start()
    yield fake
    await fake.stop()


@pytest.fixture
async def sessions() -> AsyncIterator[SessionPool]:
    pool = SessionPool(connect_timeout=5)
    yield pool
    await pool.close()


def client(
    upstream: FakeUpstream, sessions: SessionPool, *, key: str | None = KEY, **kw: Any
) -> OpenAICompatLLM:
    options: dict[str, Any] = {"first_token_timeout": 5.0, "idle_timeout": 5.0, **kw}
    return OpenAICompatLLM(upstream.url, key, sessions, **options)


async def collect(llm: OpenAICompatLLM, **request: Any) -> list[Chunk]:
    req = ChatRequest(model=request.pop("model", "fake-model"), messages=QUESTION, **request)
    return [chunk async for chunk in llm.stream(req)]


async def collect_until_error(llm: OpenAICompatLLM) -> tuple[list[Chunk], UpstreamError]:
    chunks: list[Chunk] = []
    with pytest.raises(UpstreamError) as info:
        async for chunk in llm.stream(ChatRequest(model="fake-model", messages=QUESTION)):
            chunks.append(chunk)
    return chunks, info.value


def text(chunks: list[Chunk], kind: str = "delta") -> str:
    return "".join(c.text for c in chunks if c.kind == kind)


def kinds(chunks: list[Chunk]) -> list[str]:
    out: list[str] = []
    for c in chunks:
        if not out or out[-1] != c.kind:
            out.append(c.kind)
    return out


# -- well-formed answers --------------------------------------------------------------------
async def test_plain_deltas_finish_and_usage(upstream: FakeUpstream, sessions: SessionPool) -> None:
    chunks = await collect(client(upstream, sessions), temperature=0.2, max_tokens=64)
    assert kinds(chunks) == ["delta", "finish", "usage"]
    assert [c.text for c in chunks if c.kind == "delta"] == DEFAULT_TOKENS  # one chunk per token
    finish = next(c for c in chunks if c.kind == "finish")
    assert finish.finish_reason == "stop"
    usage = next(c for c in chunks if c.kind == "usage")
    assert usage.usage == {"prompt_tokens": 11, "completion_tokens": len(DEFAULT_TOKENS)}
    sent = upstream.requests[-1]
    assert sent == {
        "model": "fake-model",
        "messages": QUESTION,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.2,
        "max_tokens": 64,
    }


async def test_without_include_usage_no_stream_options_and_no_usage(
    upstream: FakeUpstream, sessions: SessionPool
) -> None:
    chunks = await collect(client(upstream, sessions, include_usage=False))
    assert "stream_options" not in upstream.requests[-1]
    assert kinds(chunks) == ["delta", "finish"]


async def test_extra_body_fields_are_sent_as_is(upstream: FakeUpstream, sessions: SessionPool) -> None:
    await collect(client(upstream, sessions), extra_body={"thinking": {"type": "enabled"}})
    assert upstream.requests[-1]["thinking"] == {"type": "enabled"}


async def test_deepseek_reasoning_content_then_content(upstream: FakeUpstream, sessions: SessionPool) -> None:
    upstream.script = Script(reasoning=["First, ", "think."], tokens=["The ", "answer."])
    chunks = await collect(client(upstream, sessions), model="deepseek-reasoner")
    assert kinds(chunks) == ["reasoning", "delta", "finish", "usage"]
    assert text(chunks, "reasoning") == "First, think."
    assert text(chunks) == "The answer."


@pytest.mark.parametrize("reason", ["length", "content_filter", "tool_calls"])
async def test_finish_reasons_are_reported(
    upstream: FakeUpstream, sessions: SessionPool, reason: str
) -> None:
    upstream.script = Script(tokens=["cut ", "off"], finish_reason=reason)
    chunks = await collect(client(upstream, sessions))
    assert text(chunks) == "cut off"
    assert [c.finish_reason for c in chunks if c.kind == "finish"] == [reason]


async def test_stray_extra_choices_are_ignored(upstream: FakeUpstream, sessions: SessionPool) -> None:
    upstream.script = Script(extra_choices=True, reasoning=["hmm"])
    chunks = await collect(client(upstream, sessions))
    assert text(chunks) == "".join(DEFAULT_TOKENS) and "STRAY" not in text(chunks)
    assert text(chunks, "reasoning") == "hmm"
    assert [c.finish_reason for c in chunks if c.kind == "finish"] == ["stop"]


async def test_chunks_with_empty_choices_are_skipped(upstream: FakeUpstream, sessions: SessionPool) -> None:
    upstream.script = Script(empty_choices=True)
    chunks = await collect(client(upstream, sessions))
    assert kinds(chunks) == ["delta", "finish", "usage"]
    assert text(chunks) == "".join(DEFAULT_TOKENS)


async def test_usage_inside_the_last_choice_is_read(upstream: FakeUpstream, sessions: SessionPool) -> None:
    upstream.script = Script(tokens=["a", "b", "c"], include_usage=False, usage_in_choice=True)
    chunks = await collect(client(upstream, sessions))
    assert [c.usage for c in chunks if c.kind == "usage"] == [{"prompt_tokens": 11, "completion_tokens": 3}]


# -- failures ---------------------------------------------------------------------------------
async def test_429_surfaces_retry_after(upstream: FakeUpstream, sessions: SessionPool) -> None:
    upstream.script = Script(status=429, retry_after="7")
    chunks, error = await collect_until_error(client(upstream, sessions))
    assert chunks == []
    assert error.code == "upstream_rate_limited" and error.retryable is True
    assert error.upstream_status == 429 and error.retry_after == 7.0
    # The provider's own words reach the server log only, never users.
    assert error.provider_message == "scripted failure 429"
    assert "scripted failure" not in error.message


async def test_429_without_retry_after(upstream: FakeUpstream, sessions: SessionPool) -> None:
    upstream.script = Script(status=429)
    _, error = await collect_until_error(client(upstream, sessions))
    assert error.code == "upstream_rate_limited" and error.retry_after is None


async def test_401_wrong_key_is_not_retryable(upstream: FakeUpstream, sessions: SessionPool) -> None:
    _, error = await collect_until_error(client(upstream, sessions, key="sk-wrong"))
    assert error.code == "upstream_auth" and error.retryable is False and error.upstream_status == 401
    assert error.provider_message == "Invalid API key" and "Invalid API key" not in error.message
    assert KEY not in error.message and "sk-wrong" not in error.message
    assert upstream.requests == []  # refused before the body was read


async def test_500_is_retryable(upstream: FakeUpstream, sessions: SessionPool) -> None:
    upstream.script = Script(status=500)
    _, error = await collect_until_error(client(upstream, sessions))
    assert error.code == "upstream_unavailable" and error.retryable is True and error.upstream_status == 500


async def test_malformed_json_line_fails_after_the_good_chunks(
    upstream: FakeUpstream, sessions: SessionPool
) -> None:
    upstream.script = Script(tokens=["one ", "two ", "three"], malformed_after=2)
    chunks, error = await collect_until_error(client(upstream, sessions))
    assert text(chunks) == "one two "
    assert error.code == "upstream_protocol" and error.retryable is True


async def test_close_mid_stream_is_a_disconnect(upstream: FakeUpstream, sessions: SessionPool) -> None:
    upstream.script = Script(tokens=["one ", "two ", "three"], close_after=2)
    chunks, error = await collect_until_error(client(upstream, sessions))
    assert text(chunks) == "one two "
    assert error.code == "upstream_disconnected" and error.retryable is True


async def test_silence_mid_stream_hits_the_idle_timeout(
    upstream: FakeUpstream, sessions: SessionPool
) -> None:
    upstream.script = Script(tokens=["one ", "two"], hang_after=1)
    chunks, error = await collect_until_error(client(upstream, sessions, idle_timeout=0.3))
    assert text(chunks) == "one "
    assert error.code == "upstream_timeout"


async def test_unreachable_provider(sessions: SessionPool) -> None:
    llm = OpenAICompatLLM(f"http://127.0.0.1:{free_port()}/v1", KEY, sessions)
    with pytest.raises(UpstreamError) as info:
        async for _ in llm.stream(ChatRequest(model="m", messages=QUESTION)):
            pass
    assert info.value.code == "upstream_unreachable" and info.value.retryable is True


async def test_closing_the_iterator_early_closes_the_upstream_connection(
    upstream: FakeUpstream, sessions: SessionPool
) -> None:
    upstream.script = Script(tokens=[f"t{i} " for i in range(200)], delay=0.01)
    stream = client(upstream, sessions).stream(ChatRequest(model="fake-model", messages=QUESTION))
    first = await anext(stream)
    assert first.kind == "delta"
    assert isinstance(stream, AsyncGenerator)  # the adapter streams from an async generator
    await stream.aclose()
    assert await until(lambda: upstream.disconnects > 0, timeout=5), "the fake never saw the client hang up"
    assert upstream.completed == 0


# -- the fake itself, read by the official client ----------------------------------------------
async def test_official_client_reads_the_fake_non_streaming(upstream: FakeUpstream) -> None:
    upstream.script = Script(tokens=["A ", "short ", "title"])
    async with openai.AsyncOpenAI(base_url=upstream.url, api_key=KEY, max_retries=0) as sdk:
        reply = await sdk.chat.completions.create(model="fake-model", messages=QUESTION)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "A short title"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens == 10


async def test_official_client_reads_the_fake_stream(upstream: FakeUpstream) -> None:
    upstream.script = Script(reasoning=["why"], extra_choices=True, empty_choices=True)
    content: list[str] = []
    reasoning: list[str] = []
    usage = None
    async with openai.AsyncOpenAI(base_url=upstream.url, api_key=KEY, max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(
            model="fake-model",
            messages=[{"role": "user", "content": "Say hello"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                if choice.index != 0:
                    continue
                content.append(choice.delta.content or "")
                reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
    assert "".join(content) == "".join(DEFAULT_TOKENS)
    assert "".join(reasoning) == "why"
    assert usage is not None and usage.completion_tokens == len(DEFAULT_TOKENS)


async def test_official_client_sees_the_fakes_errors(upstream: FakeUpstream) -> None:
    upstream.script = Script(status=429, retry_after="3")
    async with openai.AsyncOpenAI(base_url=upstream.url, api_key=KEY, max_retries=0) as sdk:
        with pytest.raises(openai.RateLimitError) as info:
            await sdk.chat.completions.create(model="fake-model", messages=QUESTION)  # type: ignore[arg-type]
    assert info.value.response.headers["Retry-After"] == "3"
    async with openai.AsyncOpenAI(base_url=upstream.url, api_key="sk-wrong", max_retries=0) as sdk:
        with pytest.raises(openai.AuthenticationError):
            await sdk.chat.completions.create(model="fake-model", messages=QUESTION)  # type: ignore[arg-type]


# -- non-streaming answers (chat titles) ----------------------------------------------------
async def test_complete_returns_the_whole_answer_without_streaming(
    upstream: FakeUpstream, sessions: SessionPool
) -> None:
    upstream.script = Script(tokens=["Short ", "title"])
    llm = client(upstream, sessions)
    text = await llm.complete(ChatRequest(model="fake-model", messages=QUESTION, max_tokens=16))
    assert text == "Short title"
    [body] = upstream.plain_requests
    assert body["stream"] is False and "stream_options" not in body and body["max_tokens"] == 16


@pytest.mark.parametrize(
    ("script", "key", "code", "attempts"),
    [
        (Script(), "sk-wrong", "upstream_auth", 1),  # not retryable: asked once
        (Script(status=503), KEY, "upstream_unavailable", 2),  # retryable: asked again once
        (Script(status=429, retry_after="0"), KEY, "upstream_rate_limited", 2),
    ],
)
async def test_complete_maps_failures_like_the_stream(
    upstream: FakeUpstream, sessions: SessionPool, script: Script, key: str, code: str, attempts: int
) -> None:
    upstream.script = script
    seen: list[dict[str, Any]] = []
    upstream.on_request = seen.append
    with pytest.raises(UpstreamError) as info:
        await client(upstream, sessions, key=key).complete(ChatRequest(model="fake-model", messages=QUESTION))
    assert info.value.code == code
    assert len(seen) == (attempts if key == KEY else 0)


async def test_complete_refuses_a_body_that_is_not_a_chat_completion(sessions: SessionPool) -> None:
    from aiohttp import web

    async def odd(request: web.Request) -> web.Response:
        return web.json_response({"choices": "nope"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", odd)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        llm = OpenAICompatLLM(f"http://127.0.0.1:{port}/v1", None, sessions)
        with pytest.raises(UpstreamError) as info:
            await llm.complete(ChatRequest(model="m", messages=QUESTION))
        assert info.value.code == "upstream_protocol"
    finally:
        await runner.cleanup()
