"""A FileService on real parts: SQLite or MongoDB (FerretDB) store, directory or GridFS
bytes, and the real isolated worker processes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from gust.adapters.files.directory import DirectoryFileStorage
from gust.adapters.files.gridfs import GridFSFileStorage
from gust.adapters.isolation.process import ProcessIsolation
from gust.adapters.store.mongo import MongoStore
from gust.adapters.store.sqlite import SQLiteStore
from gust.domain.files import FileRecord
from gust.ports.file_storage import FileStorage
from gust.ports.files_store import FilesStore
from gust.services.files import FileLimits, FileService
from tests.support.env import require_env
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
    backend: str, tmp_path: Path, limits: FileLimits = FileLimits(), *, memory_mb: int = 512,  # noqa: B008
    timeout: float = 30.0,
) -> AsyncIterator[FilesRig]:
    isolation = ProcessIsolation(memory_bytes=memory_mb << 20, timeout=timeout, max_concurrent=2)
    store: SQLiteStore | MongoStore
    storage: DirectoryFileStorage | GridFSFileStorage
    db_name = f"gust_files_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        store, storage = SQLiteStore(tmp_path / "store.db"), DirectoryFileStorage(tmp_path / "files")
    else:
        uri = require_env("TEST_MONGODB_URI", "a MongoDB wire-protocol server (FerretDB)")
        store, storage = MongoStore(uri, db_name), GridFSFileStorage(uri, db_name)
    await store.start()
    await storage.start()
    service = FileService(cast(FilesStore, store), storage, isolation, limits)
    try:
        yield FilesRig(service, cast(FilesStore, store), storage, isolation)
    finally:
        await service.close()
        if isinstance(storage, GridFSFileStorage):
            await storage.database.client.drop_database(db_name)
        await storage.close()
        await store.close()
