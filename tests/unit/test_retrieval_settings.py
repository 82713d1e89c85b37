"""EMBEDDINGS_* and RETRIEVAL_* settings pick the embedder and the passage index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gust.adapters.embeddings.minilm import LocalMiniLM
from gust.adapters.embeddings.null import NullEmbedder
from gust.adapters.embeddings.openai_http import OpenAIEmbedder
from gust.adapters.retrieval.meili import MeilisearchRetrieval
from gust.adapters.retrieval.sqlite_vec import SQLiteRetrieval
from gust.config import ConfigError, load_settings
from gust.retrieval_wiring import make_embedder, make_retrieval


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("EMBEDDINGS", "RETRIEVAL_", "MEILISEARCH", "DATA_DIR")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_default_is_the_offline_model_and_sqlite() -> None:
    settings = load_settings()
    assert settings.embeddings_backend == "local"
    embedder = make_embedder(settings)
    assert isinstance(embedder, LocalMiniLM) and embedder.enabled
    retrieval = make_retrieval(settings, embedder)
    assert isinstance(retrieval, SQLiteRetrieval)
    assert retrieval.path == Path("data") / "retrieval.db"


def test_an_url_selects_the_http_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDINGS_URL", "http://embed.internal:8080/v1")
    monkeypatch.setenv("EMBEDDINGS_MODEL", "bge-small")
    monkeypatch.setenv("EMBEDDINGS_API_KEY", "k")
    monkeypatch.setenv("EMBEDDINGS_BATCH_SIZE", "16")
    embedder = make_embedder(load_settings())
    assert isinstance(embedder, OpenAIEmbedder)
    assert (embedder.url, embedder.model, embedder.api_key, embedder.batch_size) == (
        "http://embed.internal:8080/v1/embeddings", "bge-small", "k", 16
    )


def test_none_means_keyword_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBEDDINGS", "none")
    monkeypatch.setenv("EMBEDDINGS_URL", "http://embed.internal/v1")  # ignored
    monkeypatch.setenv("MEILISEARCH_HOST", "http://meili:7700")
    monkeypatch.setenv("RETRIEVAL_MEILISEARCH_INDEX", "passages")
    settings = load_settings()
    embedder = make_embedder(settings)
    assert isinstance(embedder, NullEmbedder) and not embedder.enabled
    retrieval = make_retrieval(settings, embedder)
    assert isinstance(retrieval, MeilisearchRetrieval)
    assert retrieval.index_uid == "passages"


@pytest.mark.parametrize(
    ("env", "message"),
    [({"EMBEDDINGS": "openai"}, "EMBEDDINGS_URL"),
     ({"EMBEDDINGS_URL": "http://e/v1"}, "EMBEDDINGS_MODEL"),
     ({"EMBEDDINGS": "torch"}, "EMBEDDINGS"),
     ({"RETRIEVAL_MIN_SIMILARITY": "1.5"}, "RETRIEVAL_MIN_SIMILARITY"),
     ({"RETRIEVAL_MEILISEARCH_INDEX": "bad name"}, "RETRIEVAL_MEILISEARCH_INDEX")],
)
def test_bad_values_stop_start_up(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        load_settings()
