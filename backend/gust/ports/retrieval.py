"""The retrieval port: passages of files, found by keywords and vectors, fused by rank.

Hybrid search runs two lists inside the asker's scope: BM25-style keyword matches and the
nearest vectors (cosine), then fuses them by reciprocal rank (RRF): a passage scores
sum(1 / (k + rank)) over the lists it is in, k = 60. RRF needs no score calibration
between the two engines, so the embedded and the Meilisearch adapters give the same
order for the same two lists. Without a query vector the search is keyword-only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from gust.domain.errors import Unavailable
from gust.domain.retrieval import Passage, RetrievalHit, RetrievalScope

RRF_K = 60
MAX_QUERY_TERMS = 32
_WORD = re.compile(r"\w+", re.UNICODE)


class RetrievalError(Unavailable):
    """The retrieval index refused or failed an operation."""

    code = "retrieval_unavailable"


class Retrieval(Protocol):
    """An index of passages. Writes are applied when they return; every search is scoped."""

    name: str

    async def start(self) -> None:
        """Create or open the index (idempotent)."""

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise RetrievalError if the index cannot answer right now."""

    async def index(self, passages: Sequence[Passage]) -> None:
        """Insert or replace passages by id."""

    async def delete_file(self, file_id: str) -> None:
        """Remove every passage of a file (unknown files are ignored)."""

    async def set_file_access(
        self, file_id: str, *, team_id: str | None, collection_ids: Sequence[str]
    ) -> None:
        """Change who may read a file's passages (shared with a team, added to collections)
        without re-embedding them."""

    async def reset(self) -> None:
        """Remove every passage: the start of a full re-index under another embedder."""

    async def count(self, file_id: str | None = None) -> int:
        """How many passages the index holds (of one file, or in all)."""

    async def search(
        self, query_text: str, query_vector: Sequence[float] | None, scope: RetrievalScope, limit: int
    ) -> list[RetrievalHit]:
        """The best `limit` passages within `scope`, fused by RRF; keyword-only without a vector."""


@dataclass(frozen=True, slots=True)
class Fused:
    id: str
    score: float
    keyword_rank: int | None
    vector_rank: int | None


def fuse(keyword_ids: Sequence[str], vector_ids: Sequence[str], limit: int, *, k: int = RRF_K) -> list[Fused]:
    """Reciprocal rank fusion of two best-first id lists; ties keep the keyword order first."""
    keyword_rank = {doc_id: rank for rank, doc_id in enumerate(keyword_ids, start=1)}
    vector_rank = {doc_id: rank for rank, doc_id in enumerate(vector_ids, start=1)}
    fused = []
    for doc_id in dict.fromkeys([*keyword_ids, *vector_ids]):
        kr, vr = keyword_rank.get(doc_id), vector_rank.get(doc_id)
        score = (1.0 / (k + kr) if kr else 0.0) + (1.0 / (k + vr) if vr else 0.0)
        fused.append(Fused(doc_id, score, kr, vr))
    fused.sort(key=lambda item: (-item.score, item.keyword_rank or 1 << 30, item.vector_rank or 1 << 30))
    return fused[:limit]


def candidates(limit: int) -> int:
    """How many passages each list fetches before fusion."""
    return max(limit * 4, 40)


def query_terms(text: str) -> list[str]:
    """The words of a query (at most MAX_QUERY_TERMS, each once), for a keyword search."""
    return list(dict.fromkeys(word.lower() for word in _WORD.findall(text)))[:MAX_QUERY_TERMS]
