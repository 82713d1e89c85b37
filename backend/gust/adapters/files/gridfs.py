"""ports/file_storage.py on MongoDB GridFS (with MONGODB_URI), in the GridFS spec's layout.

Collections `<bucket>.files` ({_id, length, chunkSize, uploadDate, filename, metadata})
and `<bucket>.chunks` ({files_id, n, data}), with the spec's indexes, so any GridFS tool
(pymongo's AsyncGridFSBucket, mongofiles) reads what this writes and the other way round
(tests/contract/test_file_storage_contract.py checks both directions).

Why not write through pymongo's AsyncGridIn: it keeps chunk documents in memory until
48 MB (the server's largest message) are pending before it inserts them, so an upload up
to FILE_MAX_BYTES would sit whole in memory. Here each chunk is inserted as soon as it is
full, the files document last: until then the file does not exist for readers, and a
refused or failed upload deletes the chunks it wrote. Reading uses a cursor of a few
chunks per batch (the default first batch would fetch up to 16 MiB at once).

Ids are the app's own (strings), the owner is `metadata.owner_id`, and every read,
delete and usage query filters on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import hashlib
import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

from bson import Binary, Int64
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from gust.ports.file_storage import BlobExists, BlobNotFound, BlobTooLarge, StoredBlob, check_id

log = logging.getLogger(__name__)

Doc = dict[str, Any]
CHUNK_SIZE = 255 * 1024  # the GridFS default chunk size
READ_BATCH = 4  # chunks per cursor batch (~1 MiB)


class CorruptStoredFile(Exception):
    """The chunks of a stored file do not add up to what its files document says."""


class GridFSFileStorage:
    name = "gridfs"

    def __init__(self, uri: str, db_name: str, *, bucket: str = "files", timeout_ms: int = 5000) -> None:
        self.uri = uri
        self.db_name = db_name
        self.bucket = bucket
        self.timeout_ms = timeout_ms
        self._client: AsyncMongoClient[Doc] | None = None
        self._index_task: asyncio.Task[None] | None = None

    @property
    def database(self) -> AsyncDatabase[Doc]:
        if self._client is None:
            raise RuntimeError("GridFSFileStorage used before start()")
        return self._client[self.db_name]

    @property
    def _files(self) -> AsyncCollection[Doc]:
        return self.database[f"{self.bucket}.files"]

    @property
    def _chunks(self) -> AsyncCollection[Doc]:
        return self.database[f"{self.bucket}.chunks"]

    async def start(self) -> None:
        # Created here, on the running loop: an AsyncMongoClient belongs to its first loop.
        self._client = AsyncMongoClient(
            self.uri, tz_aware=True, timeoutMS=self.timeout_ms, serverSelectionTimeoutMS=self.timeout_ms
        )
        try:
            await self._ensure_indexes()
        except PyMongoError as exc:
            # A server that is down at start-up must not keep the process from serving:
            # uploads answer 503 meanwhile; the indexes are made once it answers.
            log.error("GridFS unreachable at start-up, creating its indexes in the background: %s",
                      str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            self._index_task = asyncio.create_task(self._indexes_later(), name="gridfs-indexes")

    async def _ensure_indexes(self) -> None:
        # The GridFS spec's two indexes, plus the owner for quotas.
        await self._files.create_index([("filename", ASCENDING), ("uploadDate", ASCENDING)])
        await self._chunks.create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
        await self._files.create_index([("metadata.owner_id", ASCENDING)], name="owner")

    async def _indexes_later(self) -> None:
        delay = 1.0
        while True:
            await asyncio.sleep(delay)
            try:
                await self._ensure_indexes()
            except PyMongoError:
                delay = min(delay * 2, 30.0)
            else:
                return

    async def close(self) -> None:
        if self._index_task is not None:
            task, self._index_task = self._index_task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def put(
        self, owner_id: str, file_id: str, chunks: AsyncIterable[bytes], *, max_bytes: int
    ) -> StoredBlob:
        check_id("owner id", owner_id)
        check_id("file id", file_id)
        if await self._files.find_one({"_id": file_id}, projection={"_id": 1}):
            raise BlobExists(f"a stored file {file_id} exists")
        digest = hashlib.sha256()
        size = 0
        n = 0
        pending = bytearray()
        wrote = False
        try:
            async for piece in chunks:
                size += len(piece)
                if size > max_bytes:
                    raise BlobTooLarge(max_bytes)
                digest.update(piece)
                pending += piece
                while len(pending) >= CHUNK_SIZE:
                    await self._insert_chunk(file_id, n, bytes(pending[:CHUNK_SIZE]))
                    wrote = True
                    del pending[:CHUNK_SIZE]
                    n += 1
            if pending:
                await self._insert_chunk(file_id, n, bytes(pending))
                wrote = True
            await self._files.insert_one({
                "_id": file_id,
                "length": Int64(size),
                "chunkSize": CHUNK_SIZE,
                "uploadDate": datetime.datetime.now(tz=datetime.UTC),
                "filename": file_id,
                "metadata": {"owner_id": owner_id, "sha256": digest.hexdigest()},
            })
        except DuplicateKeyError:
            raise BlobExists(f"a stored file {file_id} exists") from None  # another writer's chunks
        except BaseException:
            if wrote:
                await self._chunks.delete_many({"files_id": file_id})
            raise
        return StoredBlob(size=size, sha256=digest.hexdigest())

    async def _insert_chunk(self, file_id: str, n: int, data: bytes) -> None:
        await self._chunks.insert_one({"files_id": file_id, "n": n, "data": Binary(data)})

    async def open(
        self, owner_id: str, file_id: str, *, chunk_size: int = 256 * 1024
    ) -> AsyncIterator[bytes]:
        doc = await self._files.find_one({"_id": file_id, "metadata.owner_id": owner_id})
        if doc is None:
            raise BlobNotFound(f"no stored file {file_id}")
        length, per_chunk = int(doc["length"]), int(doc["chunkSize"])
        expected = (length + per_chunk - 1) // per_chunk
        n = 0
        sent = 0
        cursor = self._chunks.find({"files_id": file_id}, sort=[("n", ASCENDING)], batch_size=READ_BATCH)
        try:
            async for chunk in cursor:
                if n >= expected:
                    break  # the spec says to ignore extra chunks (an aborted writer's leftovers)
                data = bytes(chunk["data"])
                want = min(per_chunk, length - sent)
                if chunk["n"] != n or len(data) != want:
                    raise CorruptStoredFile(f"stored file {file_id}: chunk {n} is missing or truncated")
                for start in range(0, len(data), chunk_size):
                    yield data[start:start + chunk_size]
                sent += len(data)
                n += 1
        finally:
            await cursor.close()
        if sent != length:
            raise CorruptStoredFile(f"stored file {file_id}: {sent} of {length} bytes found")

    async def delete(self, owner_id: str, file_id: str) -> bool:
        # The files document first: from then on the file is gone for readers.
        result = await self._files.delete_one({"_id": file_id, "metadata.owner_id": owner_id})
        if result.deleted_count == 0:
            return False
        await self._chunks.delete_many({"files_id": file_id})
        return True

    async def exists(self, owner_id: str, file_id: str) -> bool:
        owned = {"_id": file_id, "metadata.owner_id": owner_id}
        found = await self._files.find_one(owned, projection={"_id": 1})
        return found is not None

    async def usage(self, owner_id: str) -> int:
        cursor = await self._files.aggregate([
            {"$match": {"metadata.owner_id": owner_id}},
            {"$group": {"_id": None, "total": {"$sum": "$length"}}},
        ])
        async for row in cursor:
            return int(row["total"])
        return 0
