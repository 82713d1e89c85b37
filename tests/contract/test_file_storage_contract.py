"""The FileStorage contract (uploaded file bytes): runs on a directory and on GridFS (FerretDB)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gridfs.asynchronous.grid_file import AsyncGridFSBucket

from gust.adapters.files.directory import PARTIAL, DirectoryFileStorage
from gust.adapters.files.gridfs import CorruptStoredFile, GridFSFileStorage
from gust.domain.ids import new_id
from gust.ports.file_storage import BlobExists, BlobNotFound, BlobTooLarge, FileStorage, read_all
from tests.support.backends import drop_database
from tests.support.env import require_env


@pytest.fixture(params=["directory", "gridfs"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FileStorage]:
    if request.param == "directory":
        directory = DirectoryFileStorage(tmp_path / "files")
        await directory.start()
        yield directory
        await directory.close()
        return
    uri = require_env("TEST_MONGODB_URI", "a MongoDB wire-protocol server (FerretDB)")
    db_name = f"gust_files_{uuid.uuid4().hex[:12]}"
    gridfs = GridFSFileStorage(uri, db_name)
    await gridfs.start()
    yield gridfs
    await drop_database(uri, db_name)
    await gridfs.close()


async def stream(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0)  # a real upload yields to the loop between reads
        yield part


async def read(storage: FileStorage, owner: str, file_id: str) -> bytes:
    return await read_all(storage, owner, file_id, max_bytes=1 << 30)


async def test_put_streams_in_and_open_streams_the_same_bytes_back(storage: FileStorage) -> None:
    data = os.urandom(700 * 1024)  # several GridFS chunks, not a multiple of any chunk size
    parts = [data[i:i + 50_000] for i in range(0, len(data), 50_000)]
    blob = await storage.put("u1", "f1", stream(*parts), max_bytes=1 << 20)
    assert blob.size == len(data)
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    chunks = [chunk async for chunk in storage.open("u1", "f1", chunk_size=64 * 1024)]
    assert b"".join(chunks) == data
    assert max(len(chunk) for chunk in chunks) <= 64 * 1024  # streamed, not handed over whole
    assert await storage.exists("u1", "f1")


async def test_an_empty_file_round_trips(storage: FileStorage) -> None:
    blob = await storage.put("u1", "empty", stream(), max_bytes=10)
    assert blob.size == 0 and blob.sha256 == hashlib.sha256(b"").hexdigest()
    assert await read(storage, "u1", "empty") == b""
    assert await storage.exists("u1", "empty")


async def test_the_limit_is_enforced_while_streaming_and_leaves_nothing(storage: FileStorage) -> None:
    consumed: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for index in range(10_000):  # far more than the limit: must stop early
            consumed.append(index)
            yield b"x" * 100_000

    with pytest.raises(BlobTooLarge) as refused:
        await storage.put("u1", "big", endless(), max_bytes=300_000)
    assert refused.value.limit == 300_000 and refused.value.status == 413
    assert len(consumed) <= 4  # it stopped reading right past the limit
    assert not await storage.exists("u1", "big")
    assert await storage.usage("u1") == 0
    # The id is free again: nothing half-written holds it.
    await storage.put("u1", "big", stream(b"small"), max_bytes=300_000)
    assert await read(storage, "u1", "big") == b"small"


async def test_exactly_the_limit_is_accepted(storage: FileStorage) -> None:
    blob = await storage.put("u1", "edge", stream(b"a" * 99, b"b"), max_bytes=100)
    assert blob.size == 100


async def test_a_failing_stream_leaves_nothing(storage: FileStorage) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield os.urandom(300 * 1024)  # more than one GridFS chunk is written first
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await storage.put("u1", "cut", broken(), max_bytes=1 << 20)
    assert not await storage.exists("u1", "cut")
    with pytest.raises(BlobNotFound):
        await read(storage, "u1", "cut")
    assert await storage.usage("u1") == 0


async def test_an_existing_id_is_never_overwritten(storage: FileStorage) -> None:
    await storage.put("u1", "same", stream(b"first"), max_bytes=100)
    read_parts: list[bytes] = []

    async def second() -> AsyncIterator[bytes]:
        for part in (b"sec", b"ond"):
            read_parts.append(part)
            yield part

    with pytest.raises(BlobExists):
        await storage.put("u1", "same", second(), max_bytes=100)
    assert read_parts == []  # refused before the upload was read
    assert await read(storage, "u1", "same") == b"first"


async def test_files_belong_to_their_owner(storage: FileStorage) -> None:
    await storage.put("alice", "doc", stream(b"alice's"), max_bytes=100)
    with pytest.raises(BlobNotFound):
        await read(storage, "bob", "doc")
    assert not await storage.exists("bob", "doc")
    assert await storage.delete("bob", "doc") is False
    assert await read(storage, "alice", "doc") == b"alice's"


async def test_delete_removes_the_file_once(storage: FileStorage) -> None:
    await storage.put("u1", "gone", stream(b"bytes"), max_bytes=100)
    assert await storage.delete("u1", "gone") is True
    assert not await storage.exists("u1", "gone")
    assert await storage.delete("u1", "gone") is False
    with pytest.raises(BlobNotFound):
        await read(storage, "u1", "gone")


async def test_usage_counts_each_owners_complete_files(storage: FileStorage) -> None:
    assert await storage.usage("u1") == 0
    await storage.put("u1", "a", stream(b"x" * 1000), max_bytes=10_000)
    await storage.put("u1", "b", stream(b"y" * 300 * 1024), max_bytes=1 << 20)
    await storage.put("u2", "c", stream(b"z" * 7), max_bytes=10_000)
    assert await storage.usage("u1") == 1000 + 300 * 1024
    assert await storage.usage("u2") == 7
    await storage.delete("u1", "a")
    assert await storage.usage("u1") == 300 * 1024


async def test_ids_that_could_escape_are_refused(storage: FileStorage) -> None:
    for bad in ("../x", "a/b", "", ".partial", "x" * 200):
        with pytest.raises(ValueError):
            await storage.put("u1", bad, stream(b"x"), max_bytes=10)
        with pytest.raises(ValueError):
            await storage.put(bad, "f", stream(b"x"), max_bytes=10)


async def test_concurrent_puts_of_different_files_do_not_mix(storage: FileStorage) -> None:
    datas = {new_id(): os.urandom(200_000 + i) for i in range(4)}
    await asyncio.gather(*(
        storage.put("u1", file_id, stream(data[:70_000], data[70_000:]), max_bytes=1 << 20)
        for file_id, data in datas.items()
    ))
    for file_id, data in datas.items():
        assert await read(storage, "u1", file_id) == data


# -- adapter specifics ------------------------------------------------------------------

async def test_directory_removes_partial_writes_at_start(tmp_path: Path) -> None:
    root = tmp_path / "files"
    (root / PARTIAL).mkdir(parents=True)
    (root / PARTIAL / "f1.abc").write_bytes(b"half a file from a crash")
    storage = DirectoryFileStorage(root)
    await storage.start()
    assert list((root / PARTIAL).iterdir()) == []
    assert await storage.usage("u1") == 0


async def test_gridfs_layout_is_readable_by_pymongos_gridfs_and_back() -> None:
    """What the adapter writes is a standard GridFS file, and a standard one reads back."""
    uri = require_env("TEST_MONGODB_URI", "a MongoDB wire-protocol server (FerretDB)")
    db_name = f"gust_files_{uuid.uuid4().hex[:12]}"
    storage = GridFSFileStorage(uri, db_name)
    await storage.start()
    try:
        bucket = AsyncGridFSBucket(storage.database, bucket_name="files")
        data = os.urandom(600 * 1024)
        await storage.put("u1", "ours", stream(data), max_bytes=1 << 20)
        download = await bucket.open_download_stream("ours")
        assert await download.read() == data
        await bucket.upload_from_stream_with_id("theirs", "theirs.bin", data, metadata={"owner_id": "u1"})
        assert await read(storage, "u1", "theirs") == data
        assert await storage.usage("u1") == 2 * len(data)
    finally:
        await drop_database(uri, db_name)
        await storage.close()


async def test_gridfs_reports_a_file_whose_chunks_are_missing() -> None:
    uri = require_env("TEST_MONGODB_URI", "a MongoDB wire-protocol server (FerretDB)")
    db_name = f"gust_files_{uuid.uuid4().hex[:12]}"
    storage = GridFSFileStorage(uri, db_name)
    await storage.start()
    try:
        await storage.put("u1", "holed", stream(os.urandom(600 * 1024)), max_bytes=1 << 20)
        await storage.database["files.chunks"].delete_one({"files_id": "holed", "n": 1})
        with pytest.raises(CorruptStoredFile):
            await read(storage, "u1", "holed")
    finally:
        await drop_database(uri, db_name)
        await storage.close()
