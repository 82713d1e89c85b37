"""Hand-made ZIP archives for hostile-upload tests: any declared size, name or nesting.

Built in memory from raw records, so an archive can lie about its members' sizes the way
an attacker's would; never committed as binaries.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

DEFLATED = 8
STORED = 0
_DOS_DATE = (2025 - 1980) << 9 | 1 << 5 | 1  # 2025-01-01


@dataclass(frozen=True)
class RawMember:
    name: str
    payload: bytes  # as stored in the archive (already deflated for DEFLATED)
    method: int = DEFLATED
    declared_size: int | None = None  # uncompressed size written in the headers
    crc: int = 0


def deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def member(name: str, data: bytes) -> RawMember:
    """An honest deflated member."""
    return RawMember(name, deflate(data), DEFLATED, len(data), zlib.crc32(data))


def deflated_zeros(mib: int) -> bytes:
    """A raw deflate stream of `mib` MiB of zero bytes (about 1 KB per MiB), made in
    milliseconds: after a full flush the compressor starts afresh, so every further MiB
    compresses to the same bytes."""
    block = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    return first + again * (mib - 1) + c.flush()


def build(members: list[RawMember]) -> bytes:
    local = bytearray()
    central = bytearray()
    for m in members:
        name = m.name.encode()
        size = len(m.payload) if m.declared_size is None else m.declared_size
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0x800, m.method, 0, _DOS_DATE,
                             m.crc, len(m.payload), size, len(name), 0)
        local += name + m.payload
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0x800, m.method, 0, _DOS_DATE,
                               m.crc, len(m.payload), size, len(name), 0, 0, 0, 0, 0, offset)
        central += name
    count = min(len(members), 0xFFFF)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(central), len(local), 0)
    return bytes(local + central + end)
