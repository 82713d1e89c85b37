"""Meilisearch retrieval across a change of embedder on an existing index."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from gust.adapters.retrieval.meili import MeilisearchRetrieval
from gust.domain.retrieval import Passage, RetrievalScope
from gust.ports.retrieval import RetrievalError
from tests.support.env import require_env

SCOPE = RetrievalScope(user_id="alice")


@pytest.fixture
async def uid() -> AsyncIterator[str]:
    name = f"test_passages_{uuid.uuid4().hex[:12]}"
    yield name
    cleanup = MeilisearchRetrieval(require_env("TEST_MEILISEARCH_URL", "a Meilisearch server"),
                                   require_env("TEST_MEILISEARCH_KEY", "the Meilisearch key"), index_uid=name)
    await cleanup.start()
    assert cleanup._client is not None
    await cleanup._client.delete_index_if_exists(name)
    await cleanup.close()


def adapter(uid: str, dimensions: int | None) -> MeilisearchRetrieval:
    return MeilisearchRetrieval(require_env("TEST_MEILISEARCH_URL", "a Meilisearch server"),
                                require_env("TEST_MEILISEARCH_KEY", "the Meilisearch key"),
                                index_uid=uid, dimensions=dimensions)


async def test_keyword_only_index_then_a_model(uid: str) -> None:
    keyword_only = adapter(uid, None)
    await keyword_only.start()
    await keyword_only.index([Passage(id="n1", file_id="fn", owner_id="alice", text="Ferry timetable")])
    await keyword_only.close()

    # Meilisearch refuses a userProvided embedder while documents have no vectors: the
    # server still starts and keyword search still answers, until the re-index.
    with_model = adapter(uid, 3)
    await with_model.start()
    hits = await with_model.search("ferry", [1.0, 0.0, 0.0], SCOPE, 5)
    assert [hit.passage_id for hit in hits] == ["n1"] and hits[0].vector_rank is None
    with pytest.raises(RetrievalError):
        await with_model.index([Passage(id="v1", file_id="fv", owner_id="alice", text="x", vector=[1, 0, 0])])
    await with_model.reset()
    await with_model.index([Passage(id="v1", file_id="fv", owner_id="alice", text="boat", vector=[1, 0, 0])])
    hits = await with_model.search("", [1.0, 0.0, 0.0], SCOPE, 5)
    assert [hit.passage_id for hit in hits] == ["v1"] and hits[0].vector_rank == 1
    await with_model.close()


async def test_an_index_of_other_dimensions_is_refused(uid: str) -> None:
    first = adapter(uid, 3)
    await first.start()
    await first.close()
    other = adapter(uid, 4)
    with pytest.raises(RetrievalError, match="re-index"):
        await other.start()
    await other.close()
