"""Passages of files, who may read them, and what a retrieval query answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrievable piece of a file (a chunk), with what decides who may read it.

    `owner_id` owns the file; `team_id` is set when the file is shared with a team;
    `collection_ids` are the knowledge bases holding the file. `vector` is the chunk's
    unit-length embedding, None when embeddings are off (keyword-only).
    """

    id: str
    file_id: str
    owner_id: str
    text: str
    team_id: str | None = None
    collection_ids: tuple[str, ...] = ()
    page: int | None = None
    section: str | None = None
    vector: Sequence[float] | None = None


@dataclass(frozen=True, slots=True)
class RetrievalScope:
    """What the asker may read: their own files, files shared with their teams, and the
    collections they may read. Every search is bounded by it, in every adapter.

    `file_ids` narrows a search to these files (a message's attachments); it never widens
    it: a file outside the rest of the scope stays invisible.
    """

    user_id: str
    team_ids: frozenset[str] = field(default_factory=frozenset)
    collection_ids: frozenset[str] = field(default_factory=frozenset)
    file_ids: frozenset[str] | None = None

    def allows(self, passage: Passage) -> bool:
        """The same rule the adapters apply in their queries (for tests and services)."""
        if self.file_ids is not None and passage.file_id not in self.file_ids:
            return False
        return (
            passage.owner_id == self.user_id
            or (passage.team_id is not None and passage.team_id in self.team_ids)
            or not self.collection_ids.isdisjoint(passage.collection_ids)
        )


@dataclass(frozen=True, slots=True)
class RetrievalHit:
    """A passage found for a query: fused score and its rank in each list (1-based)."""

    passage_id: str
    file_id: str
    text: str
    page: int | None
    section: str | None
    score: float
    keyword_rank: int | None
    vector_rank: int | None
