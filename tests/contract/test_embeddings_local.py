"""The offline embedder: the bundled all-MiniLM-L6-v2 run by our numpy forward pass.

minilm_reference.json holds vectors made by sentence-transformers on torch (its
"generator" field says which versions) for the same texts: ours must point the same way.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest

from gust.adapters.embeddings.minilm import LocalMiniLM
from gust.adapters.embeddings.null import NullEmbedder
from gust.ports.embeddings import Embedder, EmbeddingsError, Vector, embed_or_none

REFERENCE = Path(__file__).with_name("minilm_reference.json")


def cosine(a: Vector, b: Vector) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


@pytest.fixture
async def minilm() -> LocalMiniLM:
    embedder = LocalMiniLM()
    await embedder.start()
    return embedder


async def test_vectors_match_the_torch_reference(minilm: LocalMiniLM) -> None:
    reference: list[dict[str, object]] = json.loads(REFERENCE.read_text())["items"]
    texts = [str(item["text"]) for item in reference]
    vectors = await minilm.embed(texts)
    assert minilm.dimensions == 384
    for item, vector in zip(reference, vectors, strict=True):
        expected = item["vector"]
        assert isinstance(expected, list)
        assert len(vector) == 384
        assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-5)
        assert cosine(vector, expected) >= 0.9999, item["text"]
    await minilm.close()


async def test_known_similarities(minilm: LocalMiniLM) -> None:
    # The sentence-transformers documentation's example scores for this model.
    pairs = [("The cat sits outside", "The dog plays in the garden", 0.2838),
             ("A man is playing guitar", "A woman watches TV", -0.0327),
             ("The new movie is awesome", "The new movie is so great", 0.8939)]
    vectors = await minilm.embed([text for pair in pairs for text in pair[:2]])
    for i, (_, _, score) in enumerate(pairs):
        assert abs(cosine(vectors[2 * i], vectors[2 * i + 1]) - score) < 1e-3
    await minilm.close()


async def test_embedding_leaves_the_event_loop_free(minilm: LocalMiniLM) -> None:
    ticks = 0
    done = False

    async def ticker() -> None:
        nonlocal ticks
        while not done:
            ticks += 1
            # A real wait (a spinning loop would starve the worker thread of the GIL).
            await asyncio.sleep(0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await minilm.embed(["a passage of a document about tides and harbours " * 20] * 16)
    done = True
    await task
    # Had the forward pass run on the loop, the ticker could not have run while it did.
    assert ticks - before > 1
    await minilm.close()


async def test_order_is_kept_and_an_empty_call_is_free(minilm: LocalMiniLM) -> None:
    texts = ["short", "a much longer text " * 30, "", "medium length text here"]
    together = await minilm.embed(texts)
    alone = [(await minilm.embed([text]))[0] for text in texts]
    for a, b in zip(together, alone, strict=True):
        assert cosine(a, b) > 0.99999
    assert await minilm.embed([]) == []
    await minilm.close()


async def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    embedder = LocalMiniLM(tmp_path)
    with pytest.raises(EmbeddingsError) as caught:
        await embedder.embed(["text"])
    assert caught.value.code == "embeddings_model_missing"
    await embedder.close()


async def test_none_embedder_means_keyword_only() -> None:
    embedder: Embedder = NullEmbedder()
    assert not embedder.enabled
    assert await embed_or_none(embedder, ["text"]) is None
    with pytest.raises(EmbeddingsError) as caught:
        await embedder.embed(["text"])
    assert caught.value.code == "embeddings_disabled"
