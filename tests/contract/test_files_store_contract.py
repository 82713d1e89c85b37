"""The FilesStore contract (file records and their chunks): runs on SQLite and on MongoDB."""

from __future__ import annotations

import dataclasses

import pytest

from gust.domain.errors import Conflict
from gust.domain.files import Chunk, FileRecord
from gust.domain.ids import new_id
from gust.ports.files_store import FilesStore
from tests.support.backends import StoreAdapter


@pytest.fixture
def files(store: StoreAdapter) -> FilesStore:
    return store


def record(owner: str = "u1", created_at: float = 1700000000.0, **changes: object) -> FileRecord:
    base = FileRecord(
        id=new_id(), owner_id=owner, name="Ré sumé.pdf", size=1234, content_type="application/pdf",
        sha256="ab" * 32, status="processing", created_at=created_at, team_id="t1",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def chunks_of(file: FileRecord, count: int) -> list[Chunk]:
    return [
        Chunk(id=new_id(), file_id=file.id, owner_id=file.owner_id, ordinal=i, text=f"passage {i} ✓",
              page=i + 1 if i % 2 else None, section="Intro" if i else None)
        for i in range(count)
    ]


async def test_a_record_round_trips(files: FilesStore) -> None:
    file = record()
    await files.create_file(file)
    assert await files.get_file(file.id) == file
    assert await files.get_file(new_id()) is None
    with pytest.raises(Conflict):
        await files.create_file(file)


async def test_finish_stores_the_chunks_and_the_outcome(files: FilesStore) -> None:
    file = record()
    await files.create_file(file)
    chunks = chunks_of(file, 5)
    done = await files.finish_file(file.id, "ready", chunks=chunks, pages=3)
    assert done is not None
    assert (done.status, done.chunks, done.pages, done.error_code) == ("ready", 5, 3, None)
    assert await files.get_file(file.id) == done
    assert await files.list_chunks(file.id) == chunks
    assert await files.list_chunks(file.id, after=2, limit=1) == chunks[3:4]


async def test_finishing_again_replaces_the_chunks(files: FilesStore) -> None:
    file = record()
    await files.create_file(file)
    await files.finish_file(file.id, "ready", chunks=chunks_of(file, 4))
    again = chunks_of(file, 2)
    await files.finish_file(file.id, "ready", chunks=again)
    assert await files.list_chunks(file.id) == again


async def test_a_failure_keeps_its_code_and_no_chunks(files: FilesStore) -> None:
    file = record()
    await files.create_file(file)
    failed = await files.finish_file(file.id, "failed", error_code="file_encrypted", error_message="locked")
    assert failed is not None
    assert (failed.status, failed.error_code, failed.error_message, failed.chunks) == (
        "failed", "file_encrypted", "locked", 0)
    assert failed.public()["error"] == {"code": "file_encrypted", "message": "locked"}
    assert await files.list_chunks(file.id) == []


async def test_finishing_a_deleted_file_keeps_nothing(files: FilesStore) -> None:
    file = record()
    await files.create_file(file)
    assert await files.delete_file(file.id) is True
    assert await files.finish_file(file.id, "ready", chunks=chunks_of(file, 3)) is None
    assert await files.list_chunks(file.id) == []
    assert await files.delete_file(file.id) is False


async def test_delete_removes_the_chunks(files: FilesStore) -> None:
    file, other = record(), record()
    for item in (file, other):
        await files.create_file(item)
        await files.finish_file(item.id, "ready", chunks=chunks_of(item, 3))
    assert await files.delete_file(file.id)
    assert await files.get_file(file.id) is None
    assert await files.list_chunks(file.id) == []
    assert len(await files.list_chunks(other.id)) == 3


async def test_listing_is_per_owner_newest_first_with_a_cursor(files: FilesStore) -> None:
    mine = [record("u1", created_at=1700000000.0 + i // 2) for i in range(7)]  # ties on created_at
    for item in [*mine, record("u2")]:
        await files.create_file(item)
    expected = sorted(mine, key=lambda f: (f.created_at, f.id), reverse=True)
    first = await files.list_files("u1", limit=3)
    assert first == expected[:3]
    rest = await files.list_files("u1", limit=10, before=(first[-1].created_at, first[-1].id))
    assert rest == expected[3:]
    assert [f.owner_id for f in await files.list_files("u2", limit=10)] == ["u2"]


async def test_files_with_status_finds_unfinished_work_oldest_first(files: FilesStore) -> None:
    old, new, done = record(created_at=1.0), record(owner="u2", created_at=2.0), record(created_at=0.5)
    for item in (new, old, done):
        await files.create_file(item)
    await files.finish_file(done.id, "ready")
    assert [f.id for f in await files.files_with_status("processing", limit=10)] == [old.id, new.id]
    assert [f.id for f in await files.files_with_status("ready", limit=10)] == [done.id]
