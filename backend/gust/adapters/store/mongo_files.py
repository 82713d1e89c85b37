"""File records and their chunks in the MongoDB store: collections `file_records` and
`file_chunks` (not `files.*`, which GridFS's bucket uses for the bytes)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from gust.domain.errors import Conflict
from gust.domain.files import Chunk, FileRecord, FileStatus

if TYPE_CHECKING:
    from pymongo.asynchronous.collection import AsyncCollection

Doc = dict[str, Any]
_RECORD_FIELDS = tuple(field.name for field in dataclasses.fields(FileRecord))
_CHUNK_FIELDS = tuple(field.name for field in dataclasses.fields(Chunk))


def _doc(value: Any) -> Doc:
    doc = dataclasses.asdict(value)
    doc["_id"] = doc.pop("id")
    return doc


def _fields(doc: Doc, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: doc["_id"] if name == "id" else doc.get(name) for name in names}


def _record(doc: Doc) -> FileRecord:
    return FileRecord(**_fields(doc, _RECORD_FIELDS))


def _chunk(doc: Doc) -> Chunk:
    return Chunk(**_fields(doc, _CHUNK_FIELDS))


class MongoFilesMixin:
    """Mixed into MongoStore (uses its `_col`)."""

    if TYPE_CHECKING:

        def _col(self, name: str) -> AsyncCollection[Doc]: ...

    async def _ensure_files_indexes(self) -> None:
        await self._col("file_records").create_index(
            [("owner_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)], name="owner_created"
        )
        await self._col("file_records").create_index(
            [("status", ASCENDING), ("created_at", ASCENDING)], name="status_created"
        )
        await self._col("file_chunks").create_index(
            [("file_id", ASCENDING), ("ordinal", ASCENDING)], name="file_ordinal", unique=True
        )

    async def create_file(self, record: FileRecord) -> None:
        try:
            await self._col("file_records").insert_one(_doc(record))
        except DuplicateKeyError as exc:
            raise Conflict("a file with this id exists", code="file_exists") from exc

    async def get_file(self, file_id: str) -> FileRecord | None:
        doc = await self._col("file_records").find_one({"_id": file_id})
        return _record(doc) if doc else None

    async def list_files(
        self, owner_id: str, *, limit: int, before: tuple[float, str] | None = None
    ) -> list[FileRecord]:
        query: Doc = {"owner_id": owner_id}
        if before is not None:
            query["$or"] = [
                {"created_at": {"$lt": before[0]}},
                {"created_at": before[0], "_id": {"$lt": before[1]}},
            ]
        cursor = self._col("file_records").find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        return [_record(doc) async for doc in cursor.limit(limit)]

    async def files_with_status(self, status: FileStatus, *, limit: int) -> list[FileRecord]:
        cursor = self._col("file_records").find({"status": status}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        return [_record(doc) async for doc in cursor.limit(limit)]

    async def finish_file(
        self,
        file_id: str,
        status: FileStatus,
        *,
        chunks: Sequence[Chunk] = (),
        pages: int | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> FileRecord | None:
        # Chunks first, the status last: a crash in between leaves the file `processing`,
        # which recovery reads again (and this replaces the chunks it finds).
        file_chunks = self._col("file_chunks")
        await file_chunks.delete_many({"file_id": file_id})
        if chunks:
            await file_chunks.insert_many([_doc(chunk) for chunk in chunks], ordered=False)
        doc = await self._col("file_records").find_one_and_update(
            {"_id": file_id},
            {"$set": {"status": status, "pages": pages, "chunks": len(chunks), "error_code": error_code,
                      "error_message": error_message}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:  # deleted while it was read: keep nothing of it
            await file_chunks.delete_many({"file_id": file_id})
            return None
        return _record(doc)

    async def list_chunks(self, file_id: str, *, after: int = -1, limit: int = 1000) -> list[Chunk]:
        cursor = self._col("file_chunks").find({"file_id": file_id, "ordinal": {"$gt": after}}).sort(
            "ordinal", ASCENDING
        )
        return [_chunk(doc) async for doc in cursor.limit(limit)]

    async def delete_file(self, file_id: str) -> bool:
        result = await self._col("file_records").delete_one({"_id": file_id})
        await self._col("file_chunks").delete_many({"file_id": file_id})
        return result.deleted_count > 0
