"""The streaming multipart parser gives the same parts however the body is cut into pieces."""

from __future__ import annotations

import pytest

from gust.handlers.multipart import (
    Event,
    MultipartError,
    PartData,
    PartEnd,
    PartStart,
    StreamingMultipart,
    boundary_of,
)

BOUNDARY = b"xYz-42"
# File bytes that look like a delimiter without being one (no CRLF in front, a near miss).
TRICKY = b"--xYz-42 is not a boundary\r\n--xYz-4 nor this\r\n\r\n" + bytes(range(256))
BODY = (
    b"preamble to ignore\r\n"
    b"--xYz-42\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
    b"--xYz-42  \r\nContent-Disposition: form-data; name=\"file\"; filename=\"r\xc3\xa9sum\xc3\xa9.bin\"\r\n"
    b"Content-Type: application/octet-stream\r\n\r\n" + TRICKY + b"\r\n"
    b"--xYz-42--\r\nepilogue"
)


def parse(body: bytes, piece: int) -> list[tuple[PartStart, bytes]]:
    parser = StreamingMultipart(BOUNDARY)
    events: list[Event] = []
    for start in range(0, len(body), piece):
        events += parser.feed(body[start:start + piece])
    parser.finish()
    parts: list[tuple[PartStart, bytes]] = []
    for event in events:
        if isinstance(event, PartStart):
            parts.append((event, b""))
        elif isinstance(event, PartData):
            parts[-1] = (parts[-1][0], parts[-1][1] + event.data)
        else:
            assert isinstance(event, PartEnd)
    return parts


@pytest.mark.parametrize("piece", [1, 2, 3, 7, 9, 10, 64, 10_000])
def test_every_split_gives_the_same_parts(piece: int) -> None:
    parts = parse(BODY, piece)
    assert [(p.name, p.filename, data) for p, data in parts] == [
        ("note", None, b"hello"),
        ("file", "r\u00e9sum\u00e9.bin", TRICKY),
    ]
    assert parts[1][0].content_type == "application/octet-stream"


def test_a_body_without_its_closing_delimiter_is_refused() -> None:
    parser = StreamingMultipart(BOUNDARY)
    parser.feed(BODY[: BODY.index(b"--xYz-42--")])
    with pytest.raises(MultipartError):
        parser.finish()


def test_an_endless_part_header_is_refused() -> None:
    parser = StreamingMultipart(BOUNDARY)
    with pytest.raises(MultipartError):
        parser.feed(b"--xYz-42\r\nX-Long: " + b"a" * 20_000)


@pytest.mark.parametrize("content_type", [
    "multipart/form-data", "text/plain; boundary=abc", "multipart/form-data; boundary=",
    "multipart/form-data; boundary=" + "a" * 71, "multipart/form-data; boundary=bad\x01",
])
def test_content_types_without_a_valid_boundary_are_refused(content_type: str) -> None:
    with pytest.raises(MultipartError):
        boundary_of(content_type)


def test_a_quoted_boundary_is_read() -> None:
    assert boundary_of('multipart/form-data; boundary="a b:c"') == b"a b:c"
