"""The bundled local model (llama.cpp server in-process via xllamacpp) behind the LLM port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gust.adapters.llm.local import LocalLLM, LocalModelServer, find_gguf, local_model_available
from gust.adapters.llm.sessions import SessionPool
from gust.ports.llm import ChatRequest, Chunk

pytestmark = pytest.mark.local_model


@pytest.fixture
def server() -> LocalModelServer:
    return LocalModelServer(context=2048)


@pytest.fixture
async def sessions() -> AsyncIterator[SessionPool]:
    pool = SessionPool()
    yield pool
    await pool.close()


def test_the_model_file_ships_with_the_install() -> None:
    gguf = find_gguf()
    assert gguf is not None and gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert gguf.stat().st_size > 50_000_000
    assert local_model_available()


async def test_back_to_back_answers_on_one_session(server: LocalModelServer, sessions: SessionPool) -> None:
    llm = LocalLLM(server, sessions, first_token_timeout=60, idle_timeout=60)
    for question in ("Name a colour.", "Name a fruit."):
        request = ChatRequest(model="smollm2", messages=[{"role": "user", "content": question}], max_tokens=8)
        chunks: list[Chunk] = [c async for c in llm.stream(request)]
        assert "".join(c.text for c in chunks if c.kind == "delta").strip()
        # The model samples: a short answer may stop before the 8-token cap.
        finishes = [c.finish_reason for c in chunks if c.kind == "finish"]
        assert finishes in (["length"], ["stop"])
        usage = next(c.usage for c in chunks if c.kind == "usage")
        assert usage is not None and usage["prompt_tokens"] > 0
        # The cap is reached exactly when the model was cut off, never passed otherwise.
        if finishes == ["length"]:
            assert usage["completion_tokens"] == 8
        else:
            assert 0 < usage["completion_tokens"] <= 8
    assert (await server.base_url()).startswith("http://127.0.0.1:")
