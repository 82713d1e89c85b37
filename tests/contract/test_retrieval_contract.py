"""One contract for every retrieval adapter: SQLite FTS5 + sqlite-vec, and Meilisearch.

Vectors here are small hand-made ones (4 dimensions) whose nearest neighbours are known,
so the vector list, the keyword list and their RRF fusion can be checked exactly.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from gust.adapters.retrieval.meili import MeilisearchRetrieval
from gust.adapters.retrieval.sqlite_vec import SQLiteRetrieval
from gust.domain.retrieval import Passage, RetrievalHit, RetrievalScope
from gust.ports.retrieval import RRF_K, Retrieval
from tests.support.env import require_env


def unit(*values: float) -> tuple[float, ...]:
    norm = math.sqrt(sum(v * v for v in values))
    return tuple(v / norm for v in values)


HARBOUR = unit(1, 0, 0, 0)
MONEY = unit(0, 1, 0, 0)
VEHICLES = unit(0, 0, 1, 0)
GARDEN = unit(0, 0, 0, 1)

ALICE = RetrievalScope(user_id="alice", team_ids=frozenset({"t1"}))
BOB = RetrievalScope(user_id="bob", team_ids=frozenset({"t1"}))
CAROL = RetrievalScope(user_id="carol", team_ids=frozenset({"t2"}))

PASSAGES = [
    Passage(id="a1", file_id="fa", owner_id="alice", page=3, section="Tides", vector=HARBOUR,
            text="The harbour master publishes tide tables every spring"),
    Passage(id="a2", file_id="fa", owner_id="alice", page=4, vector=MONEY,
            text="Invoices are paid within thirty days of receipt"),
    Passage(id="a3", file_id="fb", owner_id="alice", vector=VEHICLES,
            text="Automobile maintenance schedule for the delivery fleet"),
    Passage(id="b1", file_id="fc", owner_id="bob", vector=HARBOUR,
            text="The harbour stays closed for tide works in May"),
    Passage(id="b2", file_id="fe", owner_id="bob", team_id="t1", vector=unit(0.9, 0.1, 0, 0),
            text="Notes on harbour tide levels, team one"),
    Passage(id="c1", file_id="fd", owner_id="carol", team_id="t2", vector=HARBOUR,
            text="Harbour tide secrets of team two"),
    Passage(id="k1", file_id="fk", owner_id="carol", collection_ids=("col1",), vector=HARBOUR,
            text="Tide charts of the knowledge base"),
    Passage(id="g1", file_id="fg", owner_id="alice", vector=GARDEN,
            text="Roses need pruning in early spring"),
]


@pytest.fixture(params=["sqlite", "meilisearch"])
async def retrieval(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Retrieval]:
    if request.param == "sqlite":
        sqlite = SQLiteRetrieval(tmp_path / "retrieval.db")
        await sqlite.start()
        yield sqlite
        await sqlite.close()
        return
    url = require_env("TEST_MEILISEARCH_URL", "a Meilisearch server")
    uid = f"test_passages_{uuid.uuid4().hex[:12]}"
    key = require_env("TEST_MEILISEARCH_KEY", "the Meilisearch key")
    meili = MeilisearchRetrieval(url, key, index_uid=uid)
    await meili.start()
    yield meili
    if meili._client is not None:
        await meili._client.delete_index_if_exists(uid)
    await meili.close()


@pytest.fixture
async def indexed(retrieval: Retrieval) -> Retrieval:
    await retrieval.index(PASSAGES)
    return retrieval


def ids(hits: Sequence[RetrievalHit]) -> list[str]:
    return [hit.passage_id for hit in hits]


async def test_keyword_hits(indexed: Retrieval) -> None:
    hits = await indexed.search("tide tables", None, ALICE, 10)
    assert ids(hits)[0] == "a1"
    assert set(ids(hits)) == {"a1", "b2"}  # b2: shared with Alice's team; b1, c1, k1: not hers
    first = hits[0]
    assert (first.file_id, first.page, first.section) == ("fa", 3, "Tides")
    assert first.text.startswith("The harbour master")
    assert first.keyword_rank == 1 and first.vector_rank is None
    assert await indexed.search("zeppelin", None, ALICE, 10) == []
    assert await indexed.search("  ,;  ", None, ALICE, 10) == []


async def test_vector_only_hits_find_a_synonym(indexed: Retrieval) -> None:
    # "car servicing" shares no word with "Automobile maintenance schedule ...".
    hits = await indexed.search("car servicing", unit(0, 0.05, 1, 0), ALICE, 10)
    assert ids(hits)[0] == "a3"
    assert hits[0].vector_rank == 1 and hits[0].keyword_rank is None
    # Passages pointing away from the query (cosine <= 0) are not neighbours at all.
    assert "g1" not in ids(hits)


async def test_rrf_order(indexed: Retrieval) -> None:
    # Keyword list: [a2]. Vector list: a3 (0.8), a2 (0.6), b2 (0.07).
    hits = await indexed.search("invoices", unit(0, 0.6, 0.8, 0), ALICE, 10)
    assert ids(hits) == ["a2", "a3", "b2"]
    assert hits[0].score == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert (hits[0].keyword_rank, hits[0].vector_rank) == (1, 2)
    assert hits[1].score == pytest.approx(1 / (RRF_K + 1))
    assert hits[2].score == pytest.approx(1 / (RRF_K + 3))
    assert ids(await indexed.search("invoices", unit(0, 0.6, 0.8, 0), ALICE, 2)) == ["a2", "a3"]


@pytest.mark.parametrize(
    "scope",
    [ALICE, BOB, CAROL,
     RetrievalScope(user_id="alice", collection_ids=frozenset({"col1"})),
     RetrievalScope(user_id="dave"),
     RetrievalScope(user_id="alice", team_ids=frozenset({"t1"}), file_ids=frozenset({"fa", "fd"})),
     RetrievalScope(user_id="bob", file_ids=frozenset())],
    ids=["alice", "bob", "carol", "alice-col1", "stranger", "alice-two-files", "no-files"],
)
async def test_scoping_never_returns_what_the_asker_may_not_read(
    indexed: Retrieval, scope: RetrievalScope
) -> None:
    allowed = {p.id for p in PASSAGES if scope.allows(p)}
    for text, vector in [("harbour tide", HARBOUR), ("harbour tide", None), ("", HARBOUR),
                         ("invoices automobile roses notes charts secrets", unit(1, 1, 1, 0))]:
        found = set(ids(await indexed.search(text, vector, scope, 50)))
        assert found <= allowed, (text, found - allowed)
    # And within the scope everything that matches (by word or by vector) is found.
    matching = {"a1", "b1", "b2", "c1", "k1"}
    assert set(ids(await indexed.search("harbour tide charts", HARBOUR, scope, 50))) == allowed & matching


async def test_team_and_collection_reach(indexed: Retrieval) -> None:
    assert "b2" in ids(await indexed.search("harbour", HARBOUR, ALICE, 10))  # team t1
    assert "c1" not in ids(await indexed.search("harbour", HARBOUR, ALICE, 10))  # team t2
    with_col = RetrievalScope(user_id="alice", collection_ids=frozenset({"col1"}))
    assert "k1" in ids(await indexed.search("charts", None, with_col, 10))
    assert "k1" not in ids(await indexed.search("charts", None, ALICE, 10))


async def test_delete_by_file(indexed: Retrieval) -> None:
    total = await indexed.count()
    assert await indexed.count("fa") == 2
    await indexed.delete_file("fa")
    assert await indexed.count("fa") == 0
    assert await indexed.count() == total - 2
    found = ids(await indexed.search("tide tables invoices", HARBOUR, ALICE, 10))
    assert "a1" not in found and "a2" not in found
    assert "b2" in found  # other files stay
    await indexed.delete_file("no-such-file")
    assert await indexed.count() == total - 2


async def test_reindex_replaces_text_and_vector(indexed: Retrieval) -> None:
    total = await indexed.count()
    await indexed.index([Passage(id="a1", file_id="fa", owner_id="alice", page=9, vector=GARDEN,
                                 text="Lighthouse keepers log the weather")])
    assert await indexed.count() == total
    assert "a1" not in ids(await indexed.search("tables master", None, ALICE, 10))
    hits = await indexed.search("lighthouse", None, ALICE, 10)
    assert ids(hits) == ["a1"] and hits[0].page == 9 and hits[0].section is None
    near = await indexed.search("", GARDEN, ALICE, 10)
    assert set(ids(near)) == {"a1", "g1"}


async def test_set_file_access_without_reindexing(indexed: Retrieval) -> None:
    carol_col2 = RetrievalScope(user_id="carol", collection_ids=frozenset({"col2"}))
    assert "a2" not in ids(await indexed.search("invoices", MONEY, carol_col2, 10))
    await indexed.set_file_access("fa", team_id="t2", collection_ids=["col2"])
    hits = await indexed.search("invoices", MONEY, carol_col2, 10)
    assert ids(hits)[0] == "a2" and hits[0].vector_rank == 1  # the vector survived
    assert "a2" in ids(await indexed.search("invoices", None, CAROL, 10))  # team t2 now
    await indexed.set_file_access("fa", team_id=None, collection_ids=[])
    assert "a2" not in ids(await indexed.search("invoices", MONEY, carol_col2, 10))
    assert "a2" not in ids(await indexed.search("invoices", MONEY, CAROL, 10))
    assert "a2" in ids(await indexed.search("invoices", MONEY, ALICE, 10))


async def test_keyword_only_passages(retrieval: Retrieval) -> None:
    # EMBEDDINGS=none: passages without vectors, searches with or without a vector.
    await retrieval.index([
        Passage(id="n1", file_id="fn", owner_id="alice", text="Ferry timetable for winter"),
        Passage(id="n2", file_id="fn", owner_id="alice", text="Summer ferry fares"),
    ])
    hits = await retrieval.search("ferry timetable", None, ALICE, 10)
    assert ids(hits)[0] == "n1" and set(ids(hits)) == {"n1", "n2"}
    assert all(hit.vector_rank is None for hit in hits)
    assert await retrieval.search("", None, ALICE, 10) == []


async def test_mixed_vectors_and_none(indexed: Retrieval) -> None:
    await indexed.index([Passage(id="n1", file_id="fn", owner_id="alice", text="Ferry timetable harbour")])
    hits = await indexed.search("ferry", HARBOUR, ALICE, 10)
    assert ids(hits)[0] == "n1" and hits[0].vector_rank is None
    assert "a1" in ids(hits)  # a vector neighbour


async def test_reset_then_reindex_with_vectors(retrieval: Retrieval) -> None:
    # From EMBEDDINGS=none to a model: drop everything, index again with vectors.
    await retrieval.index([Passage(id="n1", file_id="fn", owner_id="alice", text="Ferry timetable")])
    await retrieval.reset()
    assert await retrieval.count() == 0
    assert await retrieval.search("ferry", None, ALICE, 10) == []
    await retrieval.index(PASSAGES)
    hits = await retrieval.search("car servicing", VEHICLES, ALICE, 10)
    assert ids(hits)[0] == "a3"
