"""Knowledge from uploaded files: ready files' passages indexed, searched within the asker's scope.

`KnowledgeService` is the only writer of the passage index (ports/retrieval.py): it listens
to FileService (`files.on_ready(knowledge.index_file)`, wired in gust/runtime.py), turns a
ready file's Chunks into Passages, embeds them off the event loop (the embedder port never
blocks it) and indexes them; deleting a file removes its passages too. `search` is what
context assembly calls: it finds passages the asker may read, never beyond.
"""

from __future__ import annotations

import logging

from gust.domain.files import Chunk, FileRecord
from gust.domain.models import User
from gust.domain.retrieval import Passage, RetrievalHit, RetrievalScope
from gust.ports.embeddings import Embedder, EmbeddingsError, embed_or_none
from gust.ports.files_store import FilesStore
from gust.ports.retrieval import Retrieval
from gust.services.files import FileService

log = logging.getLogger(__name__)

MAX_SEARCH_LIMIT = 50


class KnowledgeService:
    def __init__(
        self, files: FileService, store: FilesStore, embedder: Embedder, retrieval: Retrieval
    ) -> None:
        self.files = files
        self.store = store
        self.embedder = embedder
        self.retrieval = retrieval
        files.on_ready(self.index_file)

    async def index_file(self, record: FileRecord, chunks: list[Chunk]) -> None:
        """Embed and index a ready file's passages (keyword-only when embeddings fail or are off)."""
        if not chunks:
            return
        texts = [chunk.text for chunk in chunks]
        try:
            vectors = await embed_or_none(self.embedder, texts)
        except EmbeddingsError as exc:
            # The passages stay findable by keywords; `reindex --files` adds the vectors later.
            log.warning("file %s: embedding failed (%s); indexed for keywords only", record.id, exc)
            vectors = None
        passages = [
            Passage(
                id=chunk.id, file_id=record.id, owner_id=record.owner_id, text=chunk.text,
                team_id=record.team_id, page=chunk.page, section=chunk.section,
                vector=vectors[i] if vectors else None,
            )
            for i, chunk in enumerate(chunks)
        ]
        await self.retrieval.index(passages)
        if await self.store.get_file(record.id) is None:
            # Deleted while it was embedded: the delete ran before these passages existed.
            await self.retrieval.delete_file(record.id)
            return
        log.info("file %s: %d passages indexed", record.id, len(passages))

    async def delete_file(self, user: User, file_id: str) -> None:
        """Remove a file its owner asks to remove: record, passages, bytes and index entries."""
        await self.files.delete(user.id, file_id)
        await self.retrieval.delete_file(file_id)

    async def search(self, user: User, query: str, limit: int = 8) -> list[RetrievalHit]:
        """The passages best matching `query` among the files `user` may read."""
        query = query.strip()
        if not query:
            return []
        limit = max(1, min(limit, MAX_SEARCH_LIMIT))
        vector = None
        try:
            vectors = await embed_or_none(self.embedder, [query])
            vector = vectors[0] if vectors else None
        except EmbeddingsError as exc:
            log.warning("embedding a query failed (%s); searching by keywords only", exc)
        scope = RetrievalScope(
            user_id=user.id, team_ids=frozenset({user.team_id}) if user.team_id else frozenset()
        )
        return await self.retrieval.search(query, vector, scope, limit)
