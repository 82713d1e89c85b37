"""ports/file_storage.py on a directory (the embedded default, DATA_DIR/files).

Layout: `<root>/<owner_id>/<file_id>`, one plain file per upload, addressed by id rather
than by content hash. Content addressing would save the bytes of a file uploaded twice,
but it ties owners together: deleting needs a reference count shared across users, one
user's quota would depend on what others stored, and "this hash is already here" tells a
user what someone else uploaded. Ids keep every owner's files apart, `usage` is one
directory's sizes, and delete is one unlink. The SHA-256 is still computed (it goes in
the file's record, for integrity and for deduplication a user can see).

A write goes to `<root>/.partial/` first and is linked into place only when complete
(link, unlike rename, refuses an existing name), so a reader never sees half a file and
a crash leaves only a partial file, removed at the next start. File system calls run on
worker threads; the event loop only hands chunks over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import BinaryIO

from gust.ports.file_storage import BlobExists, BlobNotFound, BlobTooLarge, StoredBlob, check_id

PARTIAL = ".partial"


class DirectoryFileStorage:
    name = "directory"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare)

    def _prepare(self) -> None:
        partial = self.root / PARTIAL
        partial.mkdir(parents=True, exist_ok=True)
        for leftover in partial.iterdir():  # writes a crash cut short
            with contextlib.suppress(OSError):
                leftover.unlink()

    async def close(self) -> None:
        return None

    def _path(self, owner_id: str, file_id: str) -> Path:
        return self.root / check_id("owner id", owner_id) / check_id("file id", file_id)

    async def put(
        self, owner_id: str, file_id: str, chunks: AsyncIterable[bytes], *, max_bytes: int
    ) -> StoredBlob:
        final = self._path(owner_id, file_id)
        if await asyncio.to_thread(final.exists):  # refuse before reading the upload
            raise BlobExists(f"a stored file {file_id} exists")
        temp = self.root / PARTIAL / f"{file_id}.{secrets.token_hex(8)}"
        digest = hashlib.sha256()
        size = 0
        handle: BinaryIO = await asyncio.to_thread(open, temp, "xb")
        try:
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise BlobTooLarge(max_bytes)
                    digest.update(chunk)
                    await asyncio.to_thread(handle.write, chunk)
                await asyncio.to_thread(_sync_and_close, handle)
            finally:
                handle.close()
            await asyncio.to_thread(_publish, temp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(temp.unlink)
        return StoredBlob(size=size, sha256=digest.hexdigest())

    async def open(
        self, owner_id: str, file_id: str, *, chunk_size: int = 256 * 1024
    ) -> AsyncIterator[bytes]:
        path = self._path(owner_id, file_id)
        try:
            handle: BinaryIO = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise BlobNotFound(f"no stored file {file_id}") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk
        finally:
            handle.close()

    async def delete(self, owner_id: str, file_id: str) -> bool:
        path = self._path(owner_id, file_id)
        try:
            await asyncio.to_thread(path.unlink)
        except FileNotFoundError:
            return False
        return True

    async def exists(self, owner_id: str, file_id: str) -> bool:
        return await asyncio.to_thread(self._path(owner_id, file_id).is_file)

    async def usage(self, owner_id: str) -> int:
        return await asyncio.to_thread(_directory_size, self.root / check_id("owner id", owner_id))


def _sync_and_close(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


def _publish(temp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(temp, final)  # atomic, and refuses to replace an existing file
    except FileExistsError:
        raise BlobExists(f"a stored file {final.name} exists") from None
    with contextlib.suppress(OSError):  # the entry itself reaches the disk
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _directory_size(path: Path) -> int:
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return 0
    return sum(entry.stat().st_size for entry in entries if entry.is_file(follow_symlinks=False))
