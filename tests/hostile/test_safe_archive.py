"""The reusable ZIP reader (services/safe_archive.py) and the isolated parse worker, class by
class: every limit counts what really comes out, whatever the archive declares."""

from __future__ import annotations

import asyncio
import io
import zipfile
import zlib
from pathlib import Path

import pytest

from gust.adapters.isolation.process import ProcessIsolation
from gust.domain.errors import GustError
from gust.services.safe_archive import ArchiveLimits, ArchiveRefused, read_zip
from tests.hostile.zipcraft import DEFLATED, STORED, RawMember, build, deflated_zeros, member
from tests.support.app_server import make_settings, start_app

LIMITS = ArchiveLimits(max_unpacked_bytes=10 << 20, max_members=100, max_ratio=50)


def refused(data: bytes, limits: ArchiveLimits = LIMITS) -> tuple[int, str]:
    with pytest.raises(ArchiveRefused) as caught:
        read_zip(data, limits)
    return caught.value.status, caught.value.code


def test_an_honest_archive_reads_back_as_written() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/document.xml", "<w:document/>" * 1000)
        zf.writestr("docProps/app.xml", "<Properties/>")
        zf.writestr("media/", "")
    members = read_zip(buffer.getvalue(), LIMITS, want=lambda name: name.endswith(".xml"))
    assert [(m.name, len(m.data)) for m in members] == [("word/document.xml", 13_000),
                                                         ("docProps/app.xml", 13)]


@pytest.mark.parametrize("declared", [0, 100, 1 << 30])
def test_declared_sizes_are_never_trusted(declared: int) -> None:
    """A member inflating to 20 MiB is refused at the 10 MiB limit whatever size it declares."""
    archive = build([RawMember("a.xml", deflated_zeros(20), DEFLATED, declared_size=declared)])
    no_ratio = ArchiveLimits(max_unpacked_bytes=10 << 20, max_ratio=1e9)
    assert refused(archive, no_ratio) == (413, "archive_too_large")


def test_the_total_counts_every_member() -> None:
    archive = build([member(f"{i}.xml", bytes(3 << 20)) for i in range(4)])
    no_ratio = ArchiveLimits(max_unpacked_bytes=10 << 20, max_ratio=1e9)
    assert refused(archive, no_ratio) == (413, "archive_too_large")
    limits = ArchiveLimits(max_unpacked_bytes=100 << 20, max_member_bytes=1 << 20, max_ratio=1e9)
    assert refused(archive, limits) == (413, "archive_too_large")


def test_a_small_member_lying_about_its_size_is_corrupt() -> None:
    """Within the limits, a member that inflates to more (or less) than it declares is refused."""
    data = b"<x/>" * 100
    short = RawMember("a.xml", zlib.compress(data)[2:-4], DEFLATED, 10, zlib.crc32(data))
    assert refused(build([short])) == (400, "archive_corrupt")
    assert refused(build([RawMember("a.xml", data, STORED, len(data), crc=0)])) == (400, "archive_corrupt")


def test_ratio() -> None:
    archive = build([member("a.xml", bytes(5 << 20))])  # ~5 KB compressed: ratio ~1000
    assert refused(archive) == (422, "archive_ratio")
    small = build([member("a.xml", bytes(512 << 10))])  # under RATIO_GRACE: fine
    assert len(read_zip(small, LIMITS)[0].data) == 512 << 10


def test_member_count_from_the_end_record_and_from_the_directory() -> None:
    many = build([member(f"{i}.xml", b"x") for i in range(101)])
    assert refused(many) == (413, "archive_too_many_members")
    # An end record that understates the count: the directory itself is counted too.
    lying = bytearray(many)
    end = lying.rfind(b"PK\x05\x06")
    lying[end + 8:end + 12] = (1).to_bytes(2, "little") * 2
    assert refused(bytes(lying)) == (413, "archive_too_many_members")


@pytest.mark.parametrize("name", [
    "../evil.xml", "a/../../evil.xml", "..", "/etc/passwd", "\\windows\\evil.xml", "a\\..\\b.xml",
    "C:evil.xml", "c:/evil.xml", "a\x00b.xml", "new\nline.xml", "x" * 600,
])
def test_unsafe_names_anywhere_refuse_the_archive(name: str) -> None:
    archive = build([member("fine.xml", b"<a/>"), member(name, b"<b/>")])
    assert refused(archive) == (422, "archive_unsafe_path")
    with pytest.raises(ArchiveRefused):  # even when that member is not wanted
        read_zip(archive, LIMITS, want=lambda n: n == "fine.xml")


def test_nesting_is_refused_unless_allowed_and_shares_the_budget() -> None:
    inner = build([member("sheet.xml", bytes(6 << 20))])
    outer = build([member("embedded.zip", inner), member("more.xml", bytes(6 << 20))])
    limits = ArchiveLimits(max_unpacked_bytes=10 << 20, max_ratio=1e9)
    assert refused(outer, limits) == (422, "archive_nested")
    nested_ok = ArchiveLimits(max_unpacked_bytes=10 << 20, max_ratio=1e9, max_depth=1)
    assert refused(outer, nested_ok) == (413, "archive_too_large")  # 6 MiB inside + 6 MiB outside
    roomy = ArchiveLimits(max_unpacked_bytes=20 << 20, max_ratio=1e9, max_depth=1)
    assert [m.name for m in read_zip(outer, roomy)] == ["embedded.zip/sheet.xml", "more.xml"]
    deeper = build([member("x.zip", outer)])
    assert refused(deeper, roomy) == (422, "archive_nested")


def test_encryption_other_methods_and_garbage() -> None:
    bzip2 = build([RawMember("a.xml", b"BZh9", 12, 4)])
    assert refused(bzip2) == (422, "archive_unsupported")
    encrypted = bytearray(build([member("a.xml", b"<a/>")]))
    for at in (6, encrypted.find(b"PK\x01\x02") + 8):  # the flag bits, local and central
        encrypted[at] |= 1
    assert refused(bytes(encrypted)) == (422, "archive_unsupported")
    assert refused(b"PK\x03\x04" + b"\x00" * 100)[0] == 400
    truncated = build([member("a.xml", bytes(100_000))])
    cut = truncated.find(b"PK\x01\x02")
    assert refused(truncated[:200] + truncated[cut:])[0] == 400


def test_wall_time_is_bounded() -> None:
    archive = build([member(f"{i}.xml", b"<a/>") for i in range(5000)])
    limits = ArchiveLimits(max_unpacked_bytes=10 << 20, max_members=10_000, max_seconds=0.0)
    assert refused(archive, limits) == (422, "archive_timeout")


# -- the isolated worker ---------------------------------------------------------------------
async def test_the_worker_returns_domain_errors_and_enforces_its_caps() -> None:
    isolation = ProcessIsolation(memory_bytes=256 << 20, timeout=30, max_concurrent=4)
    target = "gust.services.import_read:parse_file"
    empty = b'{"title": "t", "mapping": {"a": {"message": null}}}'
    items = await isolation.run(target, empty, {"max_bytes": 1000})
    assert items == [{"skipped": {"title": "t", "reason": "no messages to import"}}]
    with pytest.raises(GustError) as caught:
        await isolation.run(target, b"[" + b"{}," * 3_000_000 + b"{}]", {"max_bytes": 1000})
    assert (caught.value.status, caught.value.code) == (413, "upload_too_complex")
    with pytest.raises(GustError) as caught:
        await isolation.run(target, b"not json", {"max_bytes": 1000})
    assert (caught.value.status, caught.value.code) == (400, "invalid_import_file")
    with pytest.raises(RuntimeError):  # only Gust's own functions can be targets
        await isolation.run("os:system", b"", {})


async def test_too_many_parses_at_once_are_refused_with_retry_after(tmp_path: Path) -> None:
    """Beyond PARSE_MAX_CONCURRENT: 503; a second upload of one user while the first is read:
    429 (one user cannot hold every slot)."""
    running = await start_app(make_settings(tmp_path, parse_max_concurrent=2))
    body = b'[{"title": "t", "mapping": {"a": {"message": null}}}]'
    headers = {"Content-Type": "application/json"}
    try:
        import aiohttp

        async with aiohttp.ClientSession() as http:
            users = [await running.sign_up(http, f"user{n}@example.com") for n in range(3)]
            results = await asyncio.gather(*(u.request("POST", "/api/import", data=body, headers=headers)
                                             for u in users))
            assert sorted(r.status for r in results) == [200, 200, 503]
            busy = next(r for r in results if r.status == 503)
            assert busy.error_code == "parse_busy" and busy.headers["Retry-After"] == "5"
            twice = await asyncio.gather(*(users[0].request("POST", "/api/import", data=body, headers=headers)
                                           for _ in range(2)))
            assert sorted(r.status for r in twice) == [200, 429]
            assert next(r for r in twice if r.status == 429).error_code == "parse_busy"
    finally:
        await running.stop()


async def test_a_slow_parse_is_ended_at_its_deadline(tmp_path: Path) -> None:
    import aiohttp

    running = await start_app(make_settings(tmp_path, parse_timeout=0.001))
    try:
        async with aiohttp.ClientSession() as http:
            alice = await running.sign_up(http, "alice@example.com")
            archive = build([member(f"chats/{i}.json", b"{}") for i in range(5000)])
            resp = await alice.request("POST", "/api/import", data=archive,
                                       headers={"Content-Type": "application/zip"})
            assert resp.status == 422 and resp.error_code == "archive_timeout"
    finally:
        await running.stop()
