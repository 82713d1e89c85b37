"""The embeddings port: texts in, one vector each out, from a model named by `model_id`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gust.domain.errors import UpstreamError

Vector = list[float]


class EmbeddingsError(UpstreamError):
    """The embedder could not embed: unreachable, refused, or answered something unusable.

    `retryable` tells the ingestion pipeline whether trying the same texts later may work
    (a timeout, a 5xx, a 429) or not (a 4xx, a wrong dimension, a missing model).
    """

    code = "embeddings_unavailable"


class Embedder(Protocol):
    """An embedding model.

    `model_id` names the model and everything that changes its vectors (provider URL,
    model, dimensions): a store of vectors made under another `model_id` must be
    re-indexed (`python -m gust reindex --files`). `dimensions` is None until known (an
    HTTP embedder learns it from its first answer unless configured). An embedder with
    `enabled` False (EMBEDDINGS=none) makes no vectors: retrieval is keyword-only.
    """

    model_id: str
    enabled: bool

    @property
    def dimensions(self) -> int | None: ...

    async def start(self) -> None:
        """Load or connect (idempotent); raise EmbeddingsError when unusable."""

    async def close(self) -> None: ...

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One unit-length vector per text, in order; never blocks the event loop."""


async def embed_or_none(embedder: Embedder, texts: Sequence[str]) -> list[Vector] | None:
    """The vectors of `texts`, or None when embeddings are disabled (keyword-only retrieval)."""
    if not embedder.enabled or not texts:
        return None if not embedder.enabled else []
    return await embedder.embed(texts)
