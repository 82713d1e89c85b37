"""Reading ZIP archives from strangers: every limit counts what really comes out.

An archive describes itself (sizes, counts, names) and may lie: a member that declares
100 bytes can inflate to a gibibyte. So nothing here trusts a declared size. Members are
inflated in small chunks and the *actual* output is counted against the limits, member by
member and in total; the count of members, the names, the compression ratio, archives
inside archives and the wall time are checked as well. A refusal is an `ArchiveRefused`
(a domain error: 413 for "too much", 422 for "not acceptable", 400 for "not a ZIP") with a
stable code the client can act on.

Used by imports (services/import_read.py) and meant for any upload that is a ZIP inside
(DOCX, XLSX, ODT...):

    members = read_zip(data, ArchiveLimits(max_unpacked_bytes=50 << 20),
                       want=lambda name: name.endswith(".xml"))
    for member in members: ...  # member.name, member.data (bytes)

This module only bounds what it inflates; it runs in the caller's process. Call it inside
the isolated parse worker (ports/isolation.py) so a parser's own memory and CPU use (the
XML or JSON parsed from the members) is bounded by the worker's limits and never blocks
the server's event loop.
"""

from __future__ import annotations

import re
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gust.domain.errors import GustError

CHUNK = 64 * 1024  # bytes inflated per step: the most a lying member inflates past a limit
RATIO_GRACE = 1024 * 1024  # members smaller than this are never refused for their ratio
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature ... name length, extra length
_EOCD = struct.Struct("<4s4H2LH")
_UNSAFE_NAME = re.compile(r"(^[/\\])|(^[A-Za-z]:)|\\|[\x00-\x1f\x7f]|(^|/)\.\.(/|$)")
_ZIP_MAGIC = b"PK\x03\x04"


class ArchiveRefused(GustError):
    """An archive that is refused; `status` is 413 (too much), 422 (unsafe) or 400 (not a ZIP)."""

    def __init__(self, message: str, *, code: str, status: int, **detail: Any) -> None:
        super().__init__(message, code=code, **detail)
        self.status = status


def too_large(message: str, code: str = "archive_too_large", **detail: Any) -> ArchiveRefused:
    return ArchiveRefused(message, code=code, status=413, **detail)


def unacceptable(message: str, code: str, **detail: Any) -> ArchiveRefused:
    return ArchiveRefused(message, code=code, status=422, **detail)


def corrupt(message: str) -> ArchiveRefused:
    return ArchiveRefused(message, code="archive_corrupt", status=400)


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """What one archive may hold. Sizes are bytes actually inflated, never declared ones."""

    max_unpacked_bytes: int  # all members read, together (nested archives included)
    max_member_bytes: int | None = None  # one member; None: max_unpacked_bytes
    max_members: int = 25_000  # entries in the archive, read or not
    max_ratio: float = 250.0  # inflated / compressed bytes of a member (beyond RATIO_GRACE)
    max_depth: int = 0  # archives inside read members: 0 refuses any
    max_seconds: float = 30.0  # wall time for the whole archive
    max_name_bytes: int = 512


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # "inner.zip/word/document.xml" for a member of a nested archive
    data: bytes


class _Budget:
    def __init__(self, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.unpacked = 0
        self.deadline = time.monotonic() + limits.max_seconds

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise unacceptable(
                f"reading the archive took longer than {self.limits.max_seconds:g} s", "archive_timeout"
            )


def read_zip(data: bytes, limits: ArchiveLimits, want: Callable[[str], bool] | None = None) -> list[Member]:
    """The members of `data` that `want(name)` accepts (all by default), in archive order.

    Every entry's name is checked and counted whether read or not; only wanted members are
    inflated. Raises ArchiveRefused.
    """
    return _read(data, limits, want or (lambda _name: True), _Budget(limits), depth=0, prefix="")


def is_zip(data: bytes) -> bool:
    return data[:4] == _ZIP_MAGIC


def _read(
    data: bytes, limits: ArchiveLimits, want: Callable[[str], bool], budget: _Budget, *,
    depth: int, prefix: str,
) -> list[Member]:
    _check_declared_count(data, limits)
    try:
        archive = zipfile.ZipFile(_ReadOnly(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, struct.error) as exc:
        raise corrupt(f"the file is not a readable ZIP archive: {exc}") from None
    if len(entries) > limits.max_members:
        raise too_large(f"the archive has more than {limits.max_members} entries",
                        "archive_too_many_members", limit=limits.max_members)
    for info in entries:
        _check_name(info.orig_filename, limits)  # zipfile cuts `filename` at a NUL byte
    members: list[Member] = []
    for info in entries:
        budget.tick()
        if info.is_dir() or not want(info.filename):
            continue
        content = _inflate(data, info, limits, budget)
        name = prefix + info.filename
        if is_zip(content):
            if depth >= limits.max_depth:
                raise unacceptable(f"{name!r} is an archive inside the archive", "archive_nested")
            members.extend(_read(content, limits, want, budget, depth=depth + 1, prefix=name + "/"))
            continue
        members.append(Member(name, content))
    return members


class _ReadOnly:
    """A seekable view of bytes for zipfile, without the copy io.BytesIO makes of a buffer."""

    def __init__(self, data: bytes) -> None:
        self._view = memoryview(data)
        self._pos = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: len(self._view)}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n is None or n < 0 else min(self._pos + n, len(self._view))
        chunk = bytes(self._view[self._pos:end])
        self._pos = max(end, self._pos)
        return chunk

    def seekable(self) -> bool:
        return True


def _check_declared_count(data: bytes, limits: ArchiveLimits) -> None:
    """Refuse before zipfile builds an object per entry when the end record names too many."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or at + _EOCD.size > len(data):
        return  # zipfile reports the archive as unreadable
    _sig, _disk, _cd_disk, _here, total, _cd_size, _cd_offset, _comment = _EOCD.unpack_from(data, at)
    if total != 0xFFFF and total > limits.max_members:
        raise too_large(f"the archive has more than {limits.max_members} entries",
                        "archive_too_many_members", limit=limits.max_members)


def _check_name(name: str, limits: ArchiveLimits) -> None:
    if len(name.encode("utf-8", "surrogatepass")) > limits.max_name_bytes or _UNSAFE_NAME.search(name):
        raise unacceptable(f"the archive holds an unsafe entry name: {name[:100]!r}", "archive_unsafe_path")


def _inflate(data: bytes, info: zipfile.ZipInfo, limits: ArchiveLimits, budget: _Budget) -> bytes:
    """A member's bytes, inflated chunk by chunk, counting the real output against the limits."""
    if info.flag_bits & 0x1:
        raise unacceptable(f"{info.filename!r} is encrypted", "archive_unsupported")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise unacceptable(f"{info.filename!r} uses an unsupported compression method "
                           f"({info.compress_type}); only stored and deflate are read", "archive_unsupported")
    start = info.header_offset
    if start + _LOCAL_HEADER.size > len(data):
        raise corrupt(f"{info.filename!r} points outside the archive")
    fields = _LOCAL_HEADER.unpack_from(data, start)
    if fields[0] != _ZIP_MAGIC:
        raise corrupt(f"{info.filename!r} has no local header")
    begin = start + _LOCAL_HEADER.size + fields[-2] + fields[-1]
    compressed = memoryview(data)[begin:begin + info.compress_size]
    member_limit = limits.max_member_bytes or limits.max_unpacked_bytes
    ratio_limit = max(RATIO_GRACE, int(limits.max_ratio * max(len(compressed), 1)))
    out: list[bytes] = []
    size = 0
    crc = 0

    def take(chunk: bytes) -> None:
        nonlocal size, crc
        size += len(chunk)
        budget.unpacked += len(chunk)
        if size > member_limit:
            raise too_large(f"{info.filename!r} unpacks to more than {member_limit} bytes",
                            limit=member_limit)
        if budget.unpacked > limits.max_unpacked_bytes:
            raise too_large(f"the archive unpacks to more than {limits.max_unpacked_bytes} bytes",
                            limit=limits.max_unpacked_bytes)
        if size > ratio_limit:
            raise unacceptable(f"{info.filename!r} inflates more than {limits.max_ratio:g} times its "
                               "compressed size", "archive_ratio", limit=limits.max_ratio)
        crc = zlib.crc32(chunk, crc)
        out.append(chunk)

    if info.compress_type == zipfile.ZIP_STORED:
        for offset in range(0, len(compressed), CHUNK):
            budget.tick()
            take(bytes(compressed[offset:offset + CHUNK]))
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        pending = b""
        offset = 0
        try:
            while not inflater.eof:
                budget.tick()
                if not pending and offset >= len(compressed):
                    chunk = inflater.decompress(b"", CHUNK)  # what zlib still holds, if anything
                    if not chunk:
                        raise corrupt(f"{info.filename!r} is truncated")
                    take(chunk)
                    continue
                if not pending:
                    pending = bytes(compressed[offset:offset + CHUNK])
                    offset += CHUNK
                chunk = inflater.decompress(pending, CHUNK)
                pending = inflater.unconsumed_tail
                take(chunk)
        except zlib.error as exc:
            raise corrupt(f"{info.filename!r} is not valid deflate data: {exc}") from None
    if size != info.file_size or crc != info.CRC:
        raise corrupt(f"{info.filename!r} does not match the size or checksum the archive declares")
    return b"".join(out)
