"""Embeddings from any OpenAI-compatible `/v1/embeddings` endpoint, over aiohttp.

OpenAI, Azure-style proxies, vLLM, Ollama, llama.cpp's server, LiteLLM, Infinity and TEI
all answer `{"data": [{"index": i, "embedding": [...]}, ...]}` to `{"model", "input"}`.
Texts go in batches of `batch_size`, one request at a time; every request is bounded by
`timeout`; every failure is an EmbeddingsError saying whether a retry may help.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import aiohttp

from gust import __version__
from gust.ports.embeddings import EmbeddingsError, Vector

# An answer larger than this per text is not an embedding (3,072 floats as JSON is ~70 KB).
MAX_BYTES_PER_TEXT = 1024 * 1024
PROVIDER_MESSAGE_CHARS = 500


def endpoint(url: str) -> str:
    """The embeddings endpoint for EMBEDDINGS_URL: a base URL (…/v1) or the endpoint itself."""
    url = url.rstrip("/")
    return url if url.endswith("/embeddings") else f"{url}/embeddings"


class OpenAIEmbedder:
    """Embedder over an OpenAI-compatible HTTP API."""

    enabled = True

    def __init__(
        self,
        url: str,
        model: str,
        *,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
    ) -> None:
        if not model:
            raise ValueError("EMBEDDINGS_MODEL is required with EMBEDDINGS_URL")
        self.url = endpoint(url)
        self.model = model
        self.api_key = api_key
        self.batch_size = batch_size
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self.model_id = f"openai:{model}@{self.url}"
        self._dimensions: int | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def dimensions(self) -> int | None:
        return self._dimensions

    async def start(self) -> None:
        self._client()

    def _client(self) -> aiohttp.ClientSession:
        # Created on the running loop (a session belongs to its loop).
        if self._session is None or self._session.closed:
            headers = {"User-Agent": f"Gust/{__version__}", "Accept": "application/json"}
            if self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            self._session = aiohttp.ClientSession(timeout=self.timeout, headers=headers)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = []
        for start in range(0, len(texts), self.batch_size):
            vectors.extend(await self._embed_batch(texts[start:start + self.batch_size]))
        return vectors

    async def _embed_batch(self, texts: Sequence[str]) -> list[Vector]:
        # OpenAI refuses an empty string in `input`; a space embeds as "nothing" just as well.
        body = {"model": self.model, "input": [text or " " for text in texts], "encoding_format": "float"}
        limit = MAX_BYTES_PER_TEXT * len(texts)
        try:
            async with self._client().post(self.url, json=body, allow_redirects=False) as resp:
                raw = await resp.content.read(limit + 1)
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except TimeoutError:
            raise EmbeddingsError(
                f"the embeddings provider did not answer within {self.timeout.total:g} s", retryable=True
            ) from None
        except aiohttp.ClientError as exc:
            raise EmbeddingsError(
                "cannot reach the embeddings provider",
                retryable=True,
                provider_message=f"{type(exc).__name__}: {exc}",
            ) from None
        if len(raw) > limit:
            raise _bad(f"an answer larger than {limit} bytes")
        if status != 200:
            raise _refused(status, raw, retry_after)
        return self._vectors(raw, len(texts))

    def _vectors(self, raw: bytes, count: int) -> list[Vector]:
        try:
            data = json.loads(raw)["data"]
            pairs = [(int(item["index"]), item["embedding"]) for item in data]
            items = sorted(pairs, key=lambda pair: pair[0])
        except (ValueError, KeyError, TypeError) as exc:
            raise _bad(f"not an embeddings answer ({type(exc).__name__})") from None
        if [index for index, _ in items] != list(range(count)):
            raise _bad(f"{len(items)} embeddings for {count} texts")
        vectors = [_unit(vector) for _, vector in items]
        for vector in vectors:
            if self._dimensions is None:
                self._dimensions = len(vector)
            elif len(vector) != self._dimensions:
                raise _bad(f"a vector of {len(vector)} dimensions after vectors of {self._dimensions}")
        return vectors


def _unit(vector: Any) -> Vector:
    """The vector scaled to length 1 (providers differ: cosine then equals the dot product)."""
    if not isinstance(vector, list) or not vector:
        raise _bad("an embedding that is not a list of numbers")
    try:
        values = [float(x) for x in vector]
    except (TypeError, ValueError):
        raise _bad("an embedding that is not a list of numbers") from None
    norm = math.sqrt(math.fsum(x * x for x in values))
    if not math.isfinite(norm) or norm == 0:
        raise _bad("an embedding of length zero or not finite")
    return [x / norm for x in values]


def _bad(what: str) -> EmbeddingsError:
    return EmbeddingsError(f"the embeddings provider sent {what}", code="embeddings_bad_response")


def _refused(status: int, raw: bytes, retry_after: str | None) -> EmbeddingsError:
    said = raw[:PROVIDER_MESSAGE_CHARS * 4].decode("utf-8", "replace")[:PROVIDER_MESSAGE_CHARS]
    wait: float | None = None
    if retry_after:
        try:
            wait = max(0.0, float(retry_after))
        except ValueError:
            wait = None
    if status in (401, 403):
        message, code, retryable = "refused the API key", "embeddings_unauthorized", False
    elif status == 429:
        message, code, retryable = "is rate limiting", "embeddings_rate_limited", True
    elif status >= 500:
        message, code, retryable = f"failed ({status})", "embeddings_unavailable", True
    else:
        message, code, retryable = f"refused the request ({status})", "embeddings_rejected", False
    return EmbeddingsError(
        f"the embeddings provider {message}",
        code=code,
        retryable=retryable,
        upstream_status=status,
        retry_after=wait,
        provider_message=said,
    )
