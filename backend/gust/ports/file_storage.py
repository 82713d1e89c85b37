"""The file-bytes port: where uploaded files are kept (issue 20).

Bytes stream in and out: `put` takes an async iterator of byte chunks and never holds the
whole file (the size limit is enforced while the bytes arrive, the SHA-256 computed on
the way); `open` yields the bytes back in chunks. A file is addressed by its owner and
its id (never by a name a user chose); a file that is not complete is never visible,
and a refused or failed `put` leaves nothing behind.

Adapters: a directory under DATA_DIR (adapters/files/directory.py, the embedded default)
and MongoDB GridFS (adapters/files/gridfs.py). One contract suite runs on both
(tests/contract/test_file_storage_contract.py).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from gust.domain.errors import GustError, PayloadTooLarge

# Owner and file ids are app-made URL-safe tokens; anything else is refused before it can
# become part of a path or a query.
SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


@dataclass(frozen=True, slots=True)
class StoredBlob:
    size: int
    sha256: str  # hex


class BlobTooLarge(PayloadTooLarge):
    """The stream went past `max_bytes`; nothing was kept. `limit` is the limit applied."""

    code = "file_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than {limit} bytes", limit=limit)
        self.limit = limit


class BlobExists(GustError):
    status = 409
    code = "file_exists"


class BlobNotFound(GustError):
    status = 404
    code = "not_found"


def check_id(kind: str, value: str) -> str:
    if not SAFE_ID.match(value):
        raise ValueError(f"not a valid {kind}: {value[:40]!r}")
    return value


class FileStorage(Protocol):
    name: str

    async def start(self) -> None:
        """Prepare the backend (directories, indexes)."""
        ...

    async def close(self) -> None: ...

    async def put(
        self, owner_id: str, file_id: str, chunks: AsyncIterable[bytes], *, max_bytes: int
    ) -> StoredBlob:
        """Store the stream as `file_id` of `owner_id`, all or nothing.

        Raises BlobTooLarge as soon as more than `max_bytes` arrived (what was written is
        removed), BlobExists when the id is taken. The file is visible only once complete.
        """
        ...

    def open(self, owner_id: str, file_id: str, *, chunk_size: int = 256 * 1024) -> AsyncIterator[bytes]:
        """The file's bytes in chunks; raises BlobNotFound (on first iteration) when there is none."""
        ...

    async def delete(self, owner_id: str, file_id: str) -> bool:
        """Remove the file; False when there was none."""
        ...

    async def exists(self, owner_id: str, file_id: str) -> bool: ...

    async def usage(self, owner_id: str) -> int:
        """Bytes the owner's complete files take (what a quota is checked against)."""
        ...


async def read_all(storage: FileStorage, owner_id: str, file_id: str, *, max_bytes: int) -> bytes:
    """A stored file's bytes in memory (for extraction); refuses one larger than `max_bytes`."""
    parts: list[bytes] = []
    size = 0
    async for chunk in storage.open(owner_id, file_id):
        size += len(chunk)
        if size > max_bytes:
            raise BlobTooLarge(max_bytes)
        parts.append(chunk)
    return b"".join(parts)
