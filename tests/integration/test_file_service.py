"""FileService end to end on real parts: upload → processing → read in a worker → ready,
with limits, quotas, types from content, access by owner and team, recovery and delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gust.domain.errors import NotFound, ValidationError
from gust.domain.files import Chunk, FileRecord, FileTooLarge, QuotaExceeded, UnsupportedFileType
from gust.domain.ids import new_id, now
from gust.ports.file_storage import read_all
from gust.services.files import FileLimits, clean_name
from tests.support import documents
from tests.support.backends import Backend
from tests.support.files_service import FilesRig, files_rig, stream

pytestmark = pytest.mark.both_stores  # the rig runs on SQLite + a directory, then MongoDB + GridFS


@pytest.fixture
async def rig(backend: Backend, tmp_path: Path) -> AsyncIterator[FilesRig]:
    async with files_rig(backend, tmp_path, FileLimits(max_bytes=2 << 20, quota_bytes=3 << 20)) as made:
        yield made


async def test_a_pdf_becomes_ready_with_page_anchored_chunks(rig: FilesRig) -> None:
    data = documents.pdf([["The launch code is tangerine."], ["Page two mentions the harbour."]])
    record = await rig.service.ingest("u1", "../../etc/Report.pdf", stream(data, 100), team_id="t1")
    assert (record.status, record.content_type, record.size, record.name) == (
        "processing", "application/pdf", len(data), "Report.pdf")
    done = await rig.settled(record)
    assert (done.status, done.pages, done.chunks, done.error_code) == ("ready", 2, 2, None)
    chunks = await rig.service.chunks("u1", "t1", record.id)
    assert [(c.ordinal, c.page) for c in chunks] == [(0, 1), (1, 2)]
    assert "tangerine" in chunks[0].text and "harbour" in chunks[1].text
    assert all(c.file_id == record.id and c.owner_id == "u1" for c in chunks)


async def test_the_owner_and_the_team_may_read_nobody_else(rig: FilesRig) -> None:
    data = b"# Notes\n\nShared with the team.\n"
    record = await rig.service.ingest("u1", "notes.md", stream(data), team_id="t1")
    await rig.settled(record)
    assert (await rig.service.get("u2", "t1", record.id)).id == record.id  # a teammate
    _found, content = await rig.service.content("u2", "t1", record.id)
    assert b"".join([piece async for piece in content]) == data
    for user, team in (("u3", "t2"), ("u3", None)):
        with pytest.raises(NotFound):
            await rig.service.get(user, team, record.id)
        with pytest.raises(NotFound):
            await rig.service.chunks(user, team, record.id)
    with pytest.raises(NotFound):  # a teammate may read, not delete
        await rig.service.delete("u2", record.id)


async def test_types_come_from_the_bytes_and_unsupported_ones_leave_nothing(rig: FilesRig) -> None:
    pdf_named_docx = await rig.service.ingest("u1", "letter.docx", stream(documents.pdf([["hi"]])))
    assert pdf_named_docx.content_type == "application/pdf"
    docx = await rig.service.ingest("u1", "x.bin", stream(documents.docx([("p", "body text")])))
    assert docx.content_type.endswith("wordprocessingml.document")
    polyglot = documents.pdf([["visible"]]) + documents.docx([("p", "hidden")])
    for name, data in (("notes.txt", b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 8),
                       ("report.pdf", polyglot),
                       ("doc.docx", documents.xlsx({"S": [["a"]]})[:100] + b"\x00" * 50)):
        with pytest.raises(UnsupportedFileType):
            await rig.service.ingest("u1", name, stream(data))
    with pytest.raises(ValidationError):
        await rig.service.ingest("u1", "empty.txt", stream(b""))
    items, _cursor = await rig.service.list_files("u1")
    assert {item.id for item in items} == {pdf_named_docx.id, docx.id}
    assert await rig.storage.usage("u1") == pdf_named_docx.size + docx.size


async def test_the_size_limit_and_the_quota_are_enforced_while_streaming(rig: FilesRig) -> None:
    with pytest.raises(FileTooLarge) as refused:
        await rig.service.ingest("u1", "big.txt", stream(b"a" * ((2 << 20) + 1)))
    assert refused.value.status == 413
    first = await rig.service.ingest("u1", "one.txt", stream(b"b" * (2 << 20)))
    second = await rig.service.ingest("u1", "two.txt", stream(b"c" * (1 << 20)))
    with pytest.raises(QuotaExceeded) as over:
        await rig.service.ingest("u1", "three.txt", stream(b"d"))
    assert (over.value.status, over.value.code) == (413, "file_quota_exceeded")
    await rig.service.delete("u1", second.id)
    with pytest.raises(QuotaExceeded):  # 1 MiB left: this one is past the quota, not the size limit
        await rig.service.ingest("u1", "four.txt", stream(b"e" * ((1 << 20) + 10)))
    assert await rig.storage.usage("u1") == first.size
    assert await rig.storage.usage("u2") == 0


async def test_listing_pages_with_a_cursor(rig: FilesRig) -> None:
    made = [await rig.service.ingest("u1", f"f{i}.txt", stream(f"file {i}\n".encode())) for i in range(5)]
    first, cursor = await rig.service.list_files("u1", limit=2)
    assert cursor is not None
    second, cursor2 = await rig.service.list_files("u1", limit=2, cursor=cursor)
    third, end = await rig.service.list_files("u1", limit=2, cursor=cursor2)
    assert [r.id for r in first + second + third] == [r.id for r in reversed(made)]
    assert end is None
    with pytest.raises(ValidationError):
        await rig.service.list_files("u1", cursor="%%%")


async def test_delete_removes_record_chunks_and_bytes(rig: FilesRig) -> None:
    record = await rig.service.ingest("u1", "a.txt", stream(b"some words to keep\n"))
    await rig.settled(record)
    await rig.service.delete("u1", record.id)
    assert await rig.store.get_file(record.id) is None
    assert await rig.store.list_chunks(record.id) == []
    assert not await rig.storage.exists("u1", record.id)
    with pytest.raises(NotFound):
        await rig.service.delete("u1", record.id)


async def test_listeners_hear_of_ready_files(rig: FilesRig) -> None:
    heard: list[tuple[str, int]] = []

    async def listener(record: FileRecord, chunks: list[Chunk]) -> None:
        heard.append((record.id, len(chunks)))

    rig.service.on_ready(listener)
    record = await rig.service.ingest("u1", "a.csv", stream(b"k,v\na,1\nb,2\nc,3\n"))
    await rig.settled(record)
    assert heard == [(record.id, 1)]


async def test_recover_reads_files_a_previous_run_left_processing(rig: FilesRig) -> None:
    data = documents.pptx([("Roadmap", ["Ship files"])])
    file_id = new_id()
    blob = await rig.storage.put("u1", file_id, stream(data), max_bytes=1 << 20)
    record = FileRecord(id=file_id, owner_id="u1", name="deck.pptx", size=blob.size,
                        content_type=documents_pptx_type(), sha256=blob.sha256, status="processing",
                        created_at=now())
    await rig.store.create_file(record)
    assert await rig.service.recover() == 1
    done = await rig.settled(record)
    assert (done.status, done.pages) == ("ready", 1)
    assert await read_all(rig.storage, "u1", file_id, max_bytes=1 << 20) == data


def documents_pptx_type() -> str:
    return "application/vnd.openxmlformats-officedocument.presentationml.presentation"


def test_names_are_cleaned_for_display() -> None:
    assert clean_name("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert clean_name("a\x00b\u202ec.txt") == "abc.txt"
    assert clean_name("") == "file"
    assert len(clean_name("x" * 1000)) == 255


def test_limits_come_from_the_settings() -> None:
    from gust.config import Settings

    settings = Settings(file_max_bytes=4096, file_quota_bytes=0, file_chunk_tokens=200,
                        file_chunk_overlap_tokens=20, _env_file=None)
    limits = FileLimits.from_settings(settings)
    assert (limits.max_bytes, limits.quota_bytes, limits.max_tokens, limits.min_tokens,
            limits.overlap_tokens) == (4096, 0, 200, 50, 20)
    with pytest.raises(ValueError, match="at most half"):
        Settings(file_chunk_tokens=100, file_chunk_overlap_tokens=60, _env_file=None)
