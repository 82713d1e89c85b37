"""The OpenAI-compatible embedder against a real local HTTP server (tests/support/fake_embeddings.py)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator

import pytest

from gust.adapters.embeddings.openai_http import OpenAIEmbedder, endpoint
from gust.ports.embeddings import EmbeddingsError
from tests.support.env import free_port
from tests.support.fake_embeddings import FakeEmbeddings, bag_of_words

KEY = "sk-test-embeddings"


@pytest.fixture
async def fake() -> AsyncIterator[FakeEmbeddings]:
    server = await FakeEmbeddings(api_key=KEY).start()
    yield server
    await server.stop()


@pytest.fixture
async def embedder(fake: FakeEmbeddings) -> AsyncIterator[OpenAIEmbedder]:
    client = OpenAIEmbedder(fake.url, "embed-small", api_key=KEY, batch_size=2, timeout=2.0)
    await client.start()
    yield client
    await client.close()


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


async def test_batches_in_order_and_unit_length(fake: FakeEmbeddings, embedder: OpenAIEmbedder) -> None:
    texts = ["tide tables", "harbour master", "", "ünïcödé wörds ✓", "tide"]
    vectors = await embedder.embed(texts)
    assert [len(body["input"]) for body in fake.requests] == [2, 2, 1]
    assert all(body["model"] == "embed-small" for body in fake.requests)
    assert fake.authorizations == [f"Bearer {KEY}"] * 3
    assert fake.requests[1]["input"][0] == " "  # an empty text goes as a space (OpenAI refuses "")
    for text, vector in zip(texts, vectors, strict=True):
        expected = unit(bag_of_words(text or " ", 8))
        assert vector == pytest.approx(expected)
    assert embedder.dimensions == 8
    assert embedder.model_id == f"openai:embed-small@{fake.url}/embeddings"
    assert await embedder.embed([]) == []
    assert len(fake.requests) == 3


def test_endpoint_accepts_a_base_url_or_the_endpoint() -> None:
    assert endpoint("http://h/v1") == "http://h/v1/embeddings"
    assert endpoint("http://h/v1/") == "http://h/v1/embeddings"
    assert endpoint("http://h/v1/embeddings") == "http://h/v1/embeddings"


def test_a_model_is_required() -> None:
    with pytest.raises(ValueError, match="EMBEDDINGS_MODEL"):
        OpenAIEmbedder("http://127.0.0.1:1/v1", "")


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(400, "embeddings_rejected", False), (404, "embeddings_rejected", False),
     (429, "embeddings_rate_limited", True), (500, "embeddings_unavailable", True),
     (503, "embeddings_unavailable", True)],
)
async def test_refusals_are_domain_errors(
    fake: FakeEmbeddings, embedder: OpenAIEmbedder, status: int, code: str, retryable: bool
) -> None:
    fake.script.status = status
    fake.script.retry_after = "7"
    with pytest.raises(EmbeddingsError) as caught:
        await embedder.embed(["text"])
    error = caught.value
    assert (error.code, error.retryable, error.upstream_status) == (code, retryable, status)
    assert error.retry_after == 7.0
    assert "scripted failure" not in error.message  # what the provider said stays in the log
    assert error.provider_message is not None and "scripted failure" in error.provider_message


async def test_a_wrong_key_is_not_retryable_and_not_echoed(fake: FakeEmbeddings) -> None:
    client = OpenAIEmbedder(fake.url, "embed-small", api_key="sk-wrong")
    with pytest.raises(EmbeddingsError) as caught:
        await client.embed(["text"])
    await client.close()
    assert caught.value.code == "embeddings_unauthorized"
    assert not caught.value.retryable
    assert "sk-" not in caught.value.message


@pytest.mark.parametrize("breakage", ["malformed", "drop_last", "change_dimensions_after"])
async def test_unusable_answers_are_bad_responses(
    fake: FakeEmbeddings, embedder: OpenAIEmbedder, breakage: str
) -> None:
    if breakage == "malformed":
        fake.script.malformed = True
    elif breakage == "drop_last":
        fake.script.drop_last = True
    else:
        fake.script.change_dimensions_after = 1
    with pytest.raises(EmbeddingsError) as caught:
        await embedder.embed(["one", "two", "three"])
    assert caught.value.code == "embeddings_bad_response"
    assert not caught.value.retryable


async def test_a_hanging_provider_times_out(fake: FakeEmbeddings) -> None:
    fake.script.hang = 5.0
    client = OpenAIEmbedder(fake.url, "embed-small", api_key=KEY, timeout=0.3)
    with pytest.raises(EmbeddingsError) as caught:
        await client.embed(["text"])
    await client.close()
    assert caught.value.code == "embeddings_unavailable"
    assert caught.value.retryable
    assert "did not answer within 0.3 s" in caught.value.message


async def test_an_unreachable_provider_is_retryable() -> None:
    client = OpenAIEmbedder(f"http://127.0.0.1:{free_port()}/v1", "embed-small", timeout=2.0)
    with pytest.raises(EmbeddingsError) as caught:
        await client.embed(["text"])
    await client.close()
    assert caught.value.code == "embeddings_unavailable"
    assert caught.value.retryable
