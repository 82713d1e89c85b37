"""A push parser for multipart/form-data that never holds a part's body (uploads stream on).

`feed(data)` takes the request body as it arrives and returns events: `PartStart` (the
part's name, file name and type), `PartData` (body bytes, in order) and `PartEnd`. Only the
last len(delimiter) - 1 bytes are kept between calls (a delimiter may straddle two chunks),
and a part's header block is limited. `finish()` raises when the closing delimiter never
came. Every malformed body raises MultipartError (400 `invalid_multipart`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message

from gust.domain.errors import BadRequest

MAX_HEADER_BYTES = 16 * 1024  # one part's header block
_BOUNDARY = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")


class MultipartError(BadRequest):
    code = "invalid_multipart"


@dataclass(frozen=True, slots=True)
class PartStart:
    name: str | None
    filename: str | None
    content_type: str | None


@dataclass(frozen=True, slots=True)
class PartData:
    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    pass


Event = PartStart | PartData | PartEnd


def boundary_of(content_type: str) -> bytes:
    """The boundary of a multipart/form-data Content-Type (MultipartError when there is none)."""
    header = Message()
    header["content-type"] = content_type
    if header.get_content_type() != "multipart/form-data":
        raise MultipartError("the body must be multipart/form-data with a field named file")
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not _BOUNDARY.match(boundary):
        raise MultipartError("the multipart body has no valid boundary")
    return boundary.encode("ascii")


class StreamingMultipart:
    def __init__(self, boundary: bytes) -> None:
        self._delimiter = b"\r\n--" + boundary
        # A CRLF in front: the first delimiter then looks like every later one.
        self._buf = bytearray(b"\r\n")
        self._state = "preamble"  # -> after_delimiter -> headers -> body -> ... -> done

    @property
    def done(self) -> bool:
        return self._state == "done"

    def feed(self, data: bytes) -> list[Event]:
        if self._state == "done":
            return []  # the epilogue is ignored
        self._buf += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def finish(self) -> None:
        if self._state != "done":
            raise MultipartError("the multipart body ended before its closing boundary")

    def _step(self, events: list[Event]) -> bool:
        """Advance one state if the buffer allows; False when more bytes are needed."""
        buf, delimiter = self._buf, self._delimiter
        if self._state in ("preamble", "body"):
            at = buf.find(delimiter)
            if at < 0:
                keep = len(delimiter) - 1
                if self._state == "body" and len(buf) > keep:
                    events.append(PartData(bytes(buf[: len(buf) - keep])))
                del buf[: max(len(buf) - keep, 0)]
                return False
            if self._state == "body":
                if at:
                    events.append(PartData(bytes(buf[:at])))
                events.append(PartEnd())
            del buf[: at + len(delimiter)]
            self._state = "after_delimiter"
            return True
        if self._state == "after_delimiter":
            if buf.startswith(b"--"):
                self._state = "done"
                buf.clear()
                return False
            end = buf.find(b"\r\n")
            if end < 0:
                if len(buf) > 256:
                    raise MultipartError("the multipart body has text after a boundary")
                return False
            if buf[:end].strip(b" \t"):
                raise MultipartError("the multipart body has text after a boundary")
            del buf[: end + 2]
            self._state = "headers"
            return True
        # headers
        if buf.startswith(b"\r\n"):
            block, skip = b"", 2
        else:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEADER_BYTES:
                    raise MultipartError("a part of the multipart body has too large a header")
                return False
            block, skip = bytes(buf[:end]), end + 4
        events.append(_part_start(block))
        del buf[:skip]
        self._state = "body"
        return True


def _part_start(block: bytes) -> PartStart:
    headers = Message()
    for line in block.decode("utf-8", errors="replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or name != name.strip():
            raise MultipartError("a part of the multipart body has a malformed header")
        headers[name] = value.strip()
    if headers.get("content-disposition") is None:
        raise MultipartError("a part of the multipart body has no Content-Disposition")
    raw_name = headers.get_param("name", header="content-disposition")
    filename = headers.get_filename()
    content_type = headers.get("content-type")
    return PartStart(
        name=raw_name if isinstance(raw_name, str) else None,
        filename=filename,
        content_type=str(content_type) if content_type is not None else None,
    )
