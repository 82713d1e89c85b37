"""A FileService on real parts: SQLite or MongoDB (FerretDB) store, directory or GridFS
bytes, and the real isolated worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from gust.adapters.files.directory import DirectoryFileStorage
from gust.adapters.files.gridfs import GridFSFileStorage
from gust.adapters.isolation.process import ProcessIsolation
from gust.domain.files import FileRecord
from gust.ports.file_storage import FileStorage
from gust.ports.files_store import FilesStore
from gust.services.files import FileLimits, FileService
from tests.support.backends import Backend
from tests.support.wait import until


@dataclass
class FilesRig:
    service: FileService
    store: FilesStore
    storage: FileStorage
    isolation: ProcessIsolation

    async def settled(self, record: FileRecord, timeout: float = 60.0) -> FileRecord:
        """The record once it is no longer `processing`."""
        async def done() -> bool:
            found = await self.store.get_file(record.id)
            return found is not None and found.status != "processing"

        assert await until(done, timeout=timeout, interval=0.05), f"file {record.id} still processing"
        found = await self.store.get_file(record.id)
        assert found is not None
        return found


async def stream(data: bytes, piece: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start:start + piece]


@asynccontextmanager
async def files_rig(
    backend: Backend, tmp_path: Path, limits: FileLimits = FileLimits(), *, memory_mb: int = 512,  # noqa: B008
    timeout: float = 30.0,
) -> AsyncIterator[FilesRig]:
    """On SQLite, bytes in a directory; on MongoDB (the plugin's `backend` fixture drops the
    database afterwards), bytes in GridFS of the same database."""
    isolation = ProcessIsolation(memory_bytes=memory_mb << 20, timeout=timeout, max_concurrent=2)
    store = backend.store(tmp_path)
    storage: DirectoryFileStorage | GridFSFileStorage
    if backend.mongodb_uri is not None and backend.db_name is not None:
        storage = GridFSFileStorage(backend.mongodb_uri, backend.db_name)
    else:
        storage = DirectoryFileStorage(tmp_path / "files")
    await store.start()
    await storage.start()
    service = FileService(store, storage, isolation, limits)
    try:
        yield FilesRig(service, store, storage, isolation)
    finally:
        await service.close()
        await storage.close()
        await store.close()
