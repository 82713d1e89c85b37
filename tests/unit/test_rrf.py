"""Reciprocal rank fusion and query words: the parts both retrieval adapters share."""

from __future__ import annotations

import pytest

from gust.domain.retrieval import Passage, RetrievalScope
from gust.ports.retrieval import MAX_QUERY_TERMS, RRF_K, fuse, query_terms


def test_a_passage_in_both_lists_beats_one_first_in_a_single_list() -> None:
    fused = fuse(["x", "y"], ["z", "x"], 10)
    assert [item.id for item in fused] == ["x", "z", "y"]
    assert fused[0].score == pytest.approx(1 / (RRF_K + 1) + 1 / (RRF_K + 2))
    assert (fused[0].keyword_rank, fused[0].vector_rank) == (1, 2)
    assert (fused[1].keyword_rank, fused[1].vector_rank) == (None, 1)


def test_ties_keep_the_keyword_order_first_and_limit_cuts() -> None:
    fused = fuse(["k1", "k2"], ["v1", "v2"], 3)
    assert [item.id for item in fused] == ["k1", "v1", "k2"]
    assert fuse([], [], 5) == []
    assert [item.id for item in fuse([], ["v1", "v2"], 5)] == ["v1", "v2"]


def test_k_changes_how_much_rank_matters() -> None:
    # With a small k, being first in one list outweighs being second in both.
    assert [i.id for i in fuse(["a", "b"], ["c", "b"], 3, k=0)][0] == "a"
    assert [i.id for i in fuse(["a", "b"], ["c", "b"], 3, k=60)][0] == "b"


def test_query_terms() -> None:
    assert query_terms("Tide, tide: TABLES?! naïve café 2026") == ["tide", "tables", "naïve", "café", "2026"]
    assert query_terms(' " OR NEAR( * ') == ["or", "near"]  # FTS5 syntax is only words here
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == MAX_QUERY_TERMS


def test_scope_rule() -> None:
    scope = RetrievalScope(user_id="u", team_ids=frozenset({"t"}), collection_ids=frozenset({"c"}))
    mine = Passage(id="1", file_id="f", owner_id="u", text="")
    assert scope.allows(mine)
    assert scope.allows(Passage(id="2", file_id="g", owner_id="o", team_id="t", text=""))
    assert scope.allows(Passage(id="3", file_id="h", owner_id="o", collection_ids=("x", "c"), text=""))
    other = Passage(id="4", file_id="i", owner_id="o", team_id="t2", collection_ids=("x",), text="")
    assert not scope.allows(other)
    narrowed = RetrievalScope(user_id="u", file_ids=frozenset({"other"}))
    assert not narrowed.allows(mine)
