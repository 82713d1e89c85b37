"""Part of the composition root: the embedder and the passage index that the settings pick.

app.py (which alone knows adapters) builds them with these two calls, starts them in
`main()` and closes them on shutdown; nothing here runs at import time.
"""

from __future__ import annotations

from gust.adapters.embeddings.minilm import LocalMiniLM
from gust.adapters.embeddings.null import NullEmbedder
from gust.adapters.embeddings.openai_http import OpenAIEmbedder
from gust.adapters.retrieval.meili import MeilisearchRetrieval
from gust.adapters.retrieval.sqlite_vec import SQLiteRetrieval
from gust.config import Settings
from gust.ports.embeddings import Embedder
from gust.ports.retrieval import Retrieval


def make_embedder(settings: Settings) -> Embedder:
    backend = settings.embeddings_backend
    if backend == "none":
        return NullEmbedder()
    if backend == "openai":
        assert settings.embeddings_url and settings.embeddings_model  # noqa: S101 - validated by Settings
        return OpenAIEmbedder(
            settings.embeddings_url,
            settings.embeddings_model,
            api_key=settings.embeddings_api_key,
            batch_size=settings.embeddings_batch_size,
            timeout=settings.embeddings_timeout,
        )
    # At most 16 chunks of 256 word pieces per forward pass: its attention scores and
    # activations then peak near 0.4 GB (bench/RESULTS.md); larger passes are no faster.
    batch = min(settings.embeddings_batch_size, 16)
    return LocalMiniLM(batch_size=batch, threads=settings.embeddings_threads)


def make_retrieval(settings: Settings, embedder: Embedder) -> Retrieval:
    """The passage index: Meilisearch with MEILISEARCH_HOST, else SQLite in DATA_DIR.

    Call after `embedder.start()`, so Meilisearch learns the vectors' dimensions up front
    (otherwise from the first vector it is given).
    """
    if settings.meilisearch_host:
        return MeilisearchRetrieval(
            settings.meilisearch_host,
            settings.meilisearch_api_key,
            index_uid=settings.retrieval_meilisearch_index,
            dimensions=embedder.dimensions if embedder.enabled else None,
            timeout=settings.meilisearch_timeout,
            min_similarity=settings.retrieval_min_similarity,
        )
    return SQLiteRetrieval(
        settings.retrieval_path,
        busy_timeout=settings.sqlite_busy_timeout,
        min_similarity=settings.retrieval_min_similarity,
    )
