"""Hostile uploads end `failed` with a clear code, read in the isolated worker, while the
server's event loop keeps running and a good file uploaded next is still read (issue 20).

Every hostile file is built here (zip bombs, lying sizes, billion laughs, PDF streams that
inflate past any limit, encrypted files, pixel bombs, corrupt files), never committed.
"""

from __future__ import annotations

import asyncio
import io
import struct
import zipfile
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gust.services.files import FileLimits
from tests.hostile.zipcraft import DEFLATED, STORED, RawMember, build, deflated_zeros, member
from tests.support import documents
from tests.support.backends import Backend
from tests.support.files_service import FilesRig, files_rig, stream


def _docx_members() -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(documents.docx([("p", "an ordinary document")]))) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def docx_with(extra: list[RawMember], replace: dict[str, bytes] | None = None) -> bytes:
    """A real DOCX package with members added or replaced."""
    replace = replace or {}
    members = [member(name, replace.get(name, data)) for name, data in _docx_members()]
    return build(members + extra)


def zip_bomb_docx() -> bytes:
    """An XML part that inflates to 1 GiB of zeros (honestly declared): about 1 MB."""
    return docx_with([RawMember("word/bomb.xml", deflated_zeros(1024), DEFLATED, declared_size=1 << 30)])


def lying_docx() -> bytes:
    """document.xml declares 100 bytes and inflates to 512 MiB."""
    members = [member(n, d) for n, d in _docx_members() if n != "word/document.xml"]
    lie = RawMember("word/document.xml", deflated_zeros(512), DEFLATED, declared_size=100)
    return build([*members, lie])


def billion_laughs_docx() -> bytes:
    entities = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    ]
    xml = ('<?xml version="1.0"?><!DOCTYPE w:document [' + "".join(entities) + "]>"
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           "<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>")
    return docx_with([], replace={"word/document.xml": xml.encode()})


def many_parts_docx() -> bytes:
    """An archive of 10,000+ tiny parts (over the 10,000-member limit for documents)."""
    tiny = [RawMember(f"word/media/p{i}.bin", b"x", STORED, crc=zlib.crc32(b"x")) for i in range(10_050)]
    return docx_with(tiny)


def corrupt_docx() -> bytes:
    """document.xml's deflate data replaced by noise (the directory still looks right)."""
    members = [member(n, d) for n, d in _docx_members() if n != "word/document.xml"]
    noise = RawMember("word/document.xml", b"\xff" * 300, DEFLATED, declared_size=2000)
    return build([*members, noise])


def pdf_huge_stream() -> bytes:
    """A page whose content stream inflates to 1 GiB (about 1 MB in the file)."""
    return documents.pdf_with_streams([_zlib_zeros(1024)], raw=True)


def _zlib_zeros(mib: int) -> bytes:
    raw = deflated_zeros(mib)
    header = b"\x78\xda"
    return header + raw + struct.pack(">I", 1)  # a wrong Adler-32: inflation has to stop first


def corrupt_pdf() -> bytes:
    return b"%PDF-1.7\n" + bytes(range(256)) * 40


def encrypted_office() -> bytes:
    """What Office writes for a password-protected DOCX: an OLE2 file holding EncryptedPackage."""
    return (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1000 + "EncryptionInfo".encode("utf-16-le")
            + b"\x00" * 100 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 3000)


def pixel_bomb_png() -> bytes:
    """A PNG declaring 100,000 x 100,000 pixels in a few hundred bytes."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@dataclass(frozen=True)
class Hostile:
    name: str
    make: Callable[[], bytes]
    codes: frozenset[str]


HOSTILE = [
    Hostile("zip bomb docx", zip_bomb_docx, frozenset({"archive_too_large"})),
    Hostile("docx lying about sizes", lying_docx, frozenset({"archive_too_large"})),
    Hostile("billion laughs docx", billion_laughs_docx, frozenset({"file_unsafe_xml"})),
    Hostile("10,000 parts docx", many_parts_docx, frozenset({"archive_too_many_members"})),
    Hostile("corrupt docx", corrupt_docx, frozenset({"file_corrupt"})),
    Hostile("pdf with a 1 GiB stream", pdf_huge_stream, frozenset({"file_too_complex"})),
    Hostile("corrupt pdf", corrupt_pdf, frozenset({"file_corrupt"})),
    Hostile("encrypted pdf", lambda: documents.encrypted_pdf([["secret plans"]]),
            frozenset({"file_encrypted"})),
    Hostile("encrypted office file", encrypted_office, frozenset({"file_encrypted"})),
    Hostile("pixel bomb png", pixel_bomb_png, frozenset({"image_too_large"})),
]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[FilesRig]:
    limits = FileLimits(max_bytes=25 << 20)
    async with files_rig(Backend.sqlite(), tmp_path, limits, memory_mb=512, timeout=30) as made:
        yield made


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.name for h in HOSTILE])
async def test_hostile_files_fail_with_a_clear_code_and_the_server_goes_on(
    rig: FilesRig, hostile: Hostile
) -> None:
    ticks = 0
    reading = True

    async def heartbeat() -> None:
        nonlocal ticks
        while reading:
            ticks += 1
            await asyncio.sleep(0.01)

    beat = asyncio.create_task(heartbeat())
    record = await rig.service.ingest("u1", "upload", stream(hostile.make()))
    before = ticks
    done = await rig.settled(record, timeout=90)
    reading = False
    await beat
    assert done.status == "failed", done
    assert done.error_code in hostile.codes, (done.error_code, done.error_message)
    assert done.public()["error"]["message"]
    assert await rig.store.list_chunks(record.id) == []
    assert ticks > before  # the event loop kept running while the file was read
    # The next, ordinary upload is read as usual.
    good = await rig.service.ingest("u1", "good.md", stream(b"# Fine\n\nAn ordinary file.\n"))
    assert (await rig.settled(good)).status == "ready"


async def test_a_file_that_needs_more_memory_than_the_worker_has_fails_as_too_complex(tmp_path: Path) -> None:
    """A tight worker cap (a small file still reads under it; a 25 MB CSV does not)."""
    big = "".join(f"name{i},value {i} words,{i}\n" for i in range(700_000)).encode()
    limits = FileLimits(max_bytes=25 << 20, max_text_chars=1 << 30)
    async with files_rig(Backend.sqlite(), tmp_path, limits, memory_mb=140, timeout=60) as rig:
        small = await rig.service.ingest("u1", "small.csv", stream(b"k,v\na,1\nb,2\nc,3\n"))
        assert (await rig.settled(small)).status == "ready"
        record = await rig.service.ingest("u1", "big.csv", stream(big))
        done = await rig.settled(record, timeout=90)
        assert (done.status, done.error_code) == ("failed", "file_too_complex")


async def test_a_file_that_reads_too_long_fails_as_a_timeout(tmp_path: Path) -> None:
    """20 MB of text to cut into passages: seconds of CPU, against a 1 s CPU cap."""
    text = "".join(f"line {i} with some words in it\n" for i in range(600_000)).encode()
    limits = FileLimits(max_bytes=25 << 20, max_text_chars=1 << 30)
    async with files_rig(Backend.sqlite(), tmp_path, limits, timeout=0.5) as rig:
        record = await rig.service.ingest("u1", "long.txt", stream(text))
        done = await rig.settled(record, timeout=60)
        assert (done.status, done.error_code) == ("failed", "extract_timeout")


async def test_html_nested_past_the_parsers_depth_is_read_flat(rig: FilesRig) -> None:
    """lxml stops nesting at its depth limit: the page is read, not refused, and not a crash."""
    deep = b"<!DOCTYPE html><html><body>" + b"<div>" * 200_000 + b"deep words" + b"</div>" * 200_000
    record = await rig.service.ingest("u1", "deep.html", stream(deep + b"</body></html>"))
    done = await rig.settled(record, timeout=90)
    assert done.status == "ready"
    chunks = await rig.store.list_chunks(record.id)
    assert any("deep words" in chunk.text for chunk in chunks)
