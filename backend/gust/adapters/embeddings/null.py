"""EMBEDDINGS=none: no vectors at all, so retrieval is keyword-only."""

from __future__ import annotations

from collections.abc import Sequence

from gust.ports.embeddings import EmbeddingsError, Vector


class NullEmbedder:
    """An Embedder that is switched off; `embed_or_none` answers None for it."""

    model_id = "none"
    enabled = False

    @property
    def dimensions(self) -> int | None:
        return None

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        # A caller that forgot to check `enabled` (or use embed_or_none) learns it at once.
        raise EmbeddingsError("embeddings are disabled (EMBEDDINGS=none)", code="embeddings_disabled")
