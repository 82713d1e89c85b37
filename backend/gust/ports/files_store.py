"""Store methods for uploaded files' records and their passages (issue 20).

The bytes live behind ports/file_storage.py; this keeps what the API shows about a file
(FileRecord) and the passages cut from it (Chunk). Reads by id return the record whatever
its owner: the service decides who may see it (the owner, or the owner's team).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from gust.domain.files import Chunk, FileRecord, FileStatus
from gust.ports.store import Store


class FilesStore(Store, Protocol):
    """A Store that keeps file records and their chunks."""

    async def create_file(self, record: FileRecord) -> None:
        """Add a record; Conflict (`file_exists`) when the id is taken."""
        ...

    async def get_file(self, file_id: str) -> FileRecord | None: ...

    async def list_files(
        self, owner_id: str, *, limit: int, before: tuple[float, str] | None = None
    ) -> list[FileRecord]:
        """`owner_id`'s files, newest first; `before` (created_at, id) continues a listing."""
        ...

    async def files_with_status(self, status: FileStatus, *, limit: int) -> list[FileRecord]:
        """Files in `status`, oldest first, every owner (for recovery at start-up)."""
        ...

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
        """Replace the file's chunks with `chunks` and set its outcome (`chunks` count,
        `pages`, error); None when the record is gone (deleted meanwhile: nothing is kept)."""
        ...

    async def list_chunks(self, file_id: str, *, after: int = -1, limit: int = 1000) -> list[Chunk]:
        """The file's chunks with ordinal > `after`, in order."""
        ...

    async def delete_file(self, file_id: str) -> bool:
        """Remove the record and its chunks; False when there was none."""
        ...
