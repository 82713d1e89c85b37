"""Retrieval on Meilisearch: keyword search and user-provided vectors, fused by RRF.

Passages live in an index of their own (not the chat search index). Vectors come from
Gust's embedder and are stored as `_vectors.default` under a `userProvided` embedder, so
Meilisearch never calls a model. A search asks Meilisearch for two lists within the scope
filter, both at once: a keyword search, and a hybrid search with `semanticRatio` 1.0 (the
nearest vectors only); Gust fuses them by reciprocal rank as the embedded adapter does
(Meilisearch's own hybrid mix weighs scores, which would order results differently from
the embedded default).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2
import pydantic
from meilisearch_python_sdk import AsyncClient
from meilisearch_python_sdk.errors import MeilisearchApiError, MeilisearchError
from meilisearch_python_sdk.index import AsyncIndex
from meilisearch_python_sdk.models.search import Hybrid
from meilisearch_python_sdk.models.settings import MeilisearchSettings, UserProvidedEmbedder
from meilisearch_python_sdk.models.task import TaskInfo

from gust.adapters.search.meili import quote, task_failure
from gust.domain.retrieval import Passage, RetrievalHit, RetrievalScope
from gust.ports.retrieval import RetrievalError, candidates, fuse, query_terms

log = logging.getLogger(__name__)

EMBEDDER = "default"
SEARCHABLE = ["text", "section"]
FILTERABLE = ["file_id", "owner_id", "team_id", "collection_ids"]
RETRIEVE = ["id", "file_id", "text", "page", "section"]
_FAILURES = (MeilisearchError, httpx2.HTTPError, pydantic.ValidationError)


def scope_filter(scope: RetrievalScope) -> str:
    """Meilisearch's filter for what `scope` may read."""
    readable = [f"owner_id = {quote(scope.user_id)}"]
    if scope.team_ids:
        readable.append(f"team_id IN [{', '.join(quote(t) for t in sorted(scope.team_ids))}]")
    if scope.collection_ids:
        readable.append(f"collection_ids IN [{', '.join(quote(c) for c in sorted(scope.collection_ids))}]")
    where = "(" + " OR ".join(readable) + ")"
    if scope.file_ids is not None:
        where += f" AND file_id IN [{', '.join(quote(f) for f in sorted(scope.file_ids))}]"
    return where


class MeilisearchRetrieval:
    """Retrieval on one Meilisearch index; every write waits for its task."""

    name = "meilisearch"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        index_uid: str = "gust_passages",
        dimensions: int | None = None,
        timeout: float = 10.0,
        task_timeout: float = 60.0,
        batch_size: int = 500,
        min_similarity: float = 0.0,
    ) -> None:
        self.url = url
        self.api_key = api_key
        self.index_uid = index_uid
        self.timeout = timeout
        self.task_timeout = task_timeout
        self.batch_size = batch_size
        self.min_similarity = min_similarity
        self._dimensions = dimensions  # of the index's embedder; None: no vectors yet
        self._embedder_ready = False
        self._client: AsyncClient | None = None

    @property
    def _index(self) -> AsyncIndex:
        if self._client is None:
            raise RuntimeError("MeilisearchRetrieval used before start()")
        return self._client.index(self.index_uid)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        if self._client is None:
            self._client = AsyncClient(self.url, self.api_key, timeout=max(1, round(self.timeout)))
        try:
            try:
                await self._client.get_index(self.index_uid)
            except MeilisearchApiError as exc:
                if "index_not_found" not in exc.code:
                    raise
                await self._client.create_index(
                    self.index_uid, primary_key="id", timeout_in_ms=int(self.task_timeout * 1000)
                )
            current = await self._index.get_settings()
            embedders = current.embedders or {}
            existing = embedders.get(EMBEDDER)
            if existing is not None:
                held = getattr(existing, "dimensions", None)
                if self._dimensions is not None and held != self._dimensions:
                    raise RetrievalError(
                        f"meilisearch index {self.index_uid} holds vectors of {held} dimensions, "
                        f"the embedder makes {self._dimensions}: re-index the files "
                        "(python -m gust reindex --files)"
                    )
                self._dimensions, self._embedder_ready = held, True
            wanted = MeilisearchSettings(
                searchable_attributes=SEARCHABLE, filterable_attributes=list(FILTERABLE)
            )
            if (current.searchable_attributes != SEARCHABLE
                    or sorted(_names(current.filterable_attributes)) != sorted(FILTERABLE)):
                await self._wait(await self._index.update_settings(wanted))
            if self._dimensions is not None and not self._embedder_ready:
                try:
                    await self._add_embedder(self._dimensions)
                except RetrievalError as exc:
                    # Passages indexed without vectors (EMBEDDINGS=none) block a userProvided
                    # embedder: keyword search goes on until the re-index (reset() first).
                    log.warning("meilisearch index %s: no vector search until the files are "
                                "re-indexed (python -m gust reindex --files): %s", self.index_uid, exc)
        except _FAILURES as exc:
            raise RetrievalError(f"meilisearch: {exc}") from exc

    async def _add_embedder(self, dimensions: int) -> None:
        embedder = UserProvidedEmbedder(dimensions=dimensions)
        settings = MeilisearchSettings(embedders={EMBEDDER: embedder})
        await self._wait(await self._index.update_settings(settings))
        self._dimensions, self._embedder_ready = dimensions, True

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def ping(self) -> None:
        if self._client is None:
            raise RetrievalError("meilisearch retrieval is not started")
        try:
            health = await self._client.health()
        except _FAILURES as exc:
            raise RetrievalError(f"meilisearch: {exc}") from exc
        if health.status != "available":
            raise RetrievalError(f"meilisearch is {health.status}")

    async def _wait(self, task: TaskInfo) -> None:
        if self._client is None:
            raise RuntimeError("MeilisearchRetrieval used before start()")
        failure = await task_failure(self._client, task.task_uid, self.task_timeout)
        if failure:
            raise RetrievalError(failure)

    # -- writes --------------------------------------------------------------------
    async def index(self, passages: Sequence[Passage]) -> None:
        if not passages:
            return
        try:
            for passage in passages:
                if passage.vector is not None and not self._embedder_ready:
                    await self._add_embedder(len(passage.vector))
            documents = [self._document(passage) for passage in passages]
            tasks = []
            for start in range(0, len(documents), self.batch_size):
                batch = documents[start:start + self.batch_size]
                tasks.append(await self._index.add_documents(batch, primary_key="id"))
            for task in tasks:
                await self._wait(task)
        except _FAILURES as exc:
            raise RetrievalError(f"meilisearch: {exc}") from exc

    def _document(self, passage: Passage) -> dict[str, Any]:
        document: dict[str, Any] = {
            "id": passage.id,
            "file_id": passage.file_id,
            "owner_id": passage.owner_id,
            "team_id": passage.team_id,
            "collection_ids": list(passage.collection_ids),
            "text": passage.text,
            "page": passage.page,
            "section": passage.section,
        }
        if self._embedder_ready:
            vector = None if passage.vector is None else [float(x) for x in passage.vector]
            if vector is not None and len(vector) != self._dimensions:
                raise RetrievalError(
                    f"a vector of {len(vector)} dimensions for an index of {self._dimensions}: "
                    "re-index the files (python -m gust reindex --files)"
                )
            document["_vectors"] = {EMBEDDER: vector}  # null: this passage opts out of vector search
        return document

    async def delete_file(self, file_id: str) -> None:
        try:
            await self._wait(await self._index.delete_documents_by_filter(f"file_id = {quote(file_id)}"))
        except _FAILURES as exc:
            raise RetrievalError(f"meilisearch: {exc}") from exc

    async def set_file_access(
        self, file_id: str, *, team_id: str | None, collection_ids: Sequence[str]
    ) -> None:
        collections = list(dict.fromkeys(collection_ids))
        try:
            ids: list[str] = []
            while True:
                page = await self._index.get_documents(
                    filter=f"file_id = {quote(file_id)}", fields=["id"], offset=len(ids), limit=1000
                )
                ids.extend(str(doc["id"]) for doc in page.results)
                if not page.results or len(ids) >= page.total:
                    break
            tasks = []
            for start in range(0, len(ids), self.batch_size):
                changes = [
                    {"id": doc_id, "team_id": team_id, "collection_ids": collections}
                    for doc_id in ids[start:start + self.batch_size]
                ]
                task = await self._index.update_documents(changes, primary_key="id", skip_creation=True)
                tasks.append(task)
            for task in tasks:
                await self._wait(task)
        except _FAILURES as exc:
            raise RetrievalError(f"meilisearch: {exc}") from exc

    async def reset(self) -> None:
        try:
            await self._wait(await self._index.delete_all_documents())
            if self._dimensions is not None and not self._embedder_ready:
                await self._add_embedder(self._dimensions)
        except _FAILURES as exc:
            raise RetrievalError(f"meilisearch: {exc}") from exc

    async def count(self, file_id: str | None = None) -> int:
        try:
            if file_id is None:
                return (await self._index.get_stats()).number_of_documents
            where = f"file_id = {quote(file_id)}"
            page = await self._index.get_documents(filter=where, limit=1, fields=["id"])
        except _FAILURES as exc:
            raise RetrievalError(f"meilisearch: {exc}") from exc
        return page.total

    # -- search --------------------------------------------------------------------
    async def search(
        self, query_text: str, query_vector: Sequence[float] | None, scope: RetrievalScope, limit: int
    ) -> list[RetrievalHit]:
        if limit <= 0 or (scope.file_ids is not None and not scope.file_ids):
            return []
        where = scope_filter(scope)
        wanted = candidates(limit)
        terms = query_terms(query_text)
        use_vector = (
            query_vector is not None and self._embedder_ready and len(query_vector) == self._dimensions
        )
        try:
            keyword, nearest = await asyncio.gather(
                self._keyword(" ".join(terms), where, wanted) if terms else _nothing(),
                self._nearest(query_vector, where, wanted) if use_vector and query_vector else _nothing(),
            )
        except _FAILURES as exc:
            raise RetrievalError(f"meilisearch: {exc}") from exc
        docs = {str(doc["id"]): doc for doc in [*keyword, *nearest]}
        fused = fuse([str(d["id"]) for d in keyword], [str(d["id"]) for d in nearest], limit)
        return [
            RetrievalHit(
                passage_id=item.id,
                file_id=str(docs[item.id]["file_id"]),
                text=str(docs[item.id]["text"]),
                page=docs[item.id].get("page"),
                section=docs[item.id].get("section"),
                score=item.score,
                keyword_rank=item.keyword_rank,
                vector_rank=item.vector_rank,
            )
            for item in fused
        ]

    async def _keyword(self, query: str, where: str, limit: int) -> list[Mapping[str, Any]]:
        result = await self._index.search(
            query, filter=where, limit=limit, attributes_to_retrieve=RETRIEVE, matching_strategy="last"
        )
        return list(result.hits)

    async def _nearest(self, vector: Sequence[float], where: str, limit: int) -> list[Mapping[str, Any]]:
        # Meilisearch scores a cosine similarity s as (1 + s) / 2; vectorless passages score 0.
        threshold = min(1.0, (1.0 + self.min_similarity) / 2 + 1e-6)
        result = await self._index.search(
            None,
            filter=where,
            limit=limit,
            attributes_to_retrieve=RETRIEVE,
            vector=[float(x) for x in vector],
            hybrid=Hybrid(semantic_ratio=1.0, embedder=EMBEDDER),
            ranking_score_threshold=threshold,
        )
        return list(result.hits)


async def _nothing() -> list[Mapping[str, Any]]:
    return []


def _names(attributes: Sequence[Any] | None) -> list[str]:
    names = []
    for item in attributes or []:
        if isinstance(item, str):
            names.append(item)
        else:
            names.extend(getattr(item, "attribute_patterns", None) or [])
    return names
