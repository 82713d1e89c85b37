"""Malformed multipart bodies and out-of-range dates: a 4xx naming the problem, never a 500.

Before: multipart/form-data without a boundary on /api/import was a 500, and /api/usage with
a date its own arithmetic or the ISO echo could not hold (9999-12-31 as `to`, 400-digit epoch
seconds, year 0 once in UTC) was a 500.
"""

from __future__ import annotations

import io
import random
import struct
from urllib.parse import quote

import pytest
from PIL import Image

from tests.support.app_server import RunningApp
from tests.support.client import Api

FILE = b'{"format": "gust.chat", "title": "x"}'
B = "XyZ"

MALFORMED_MULTIPART = {
    "no-boundary": ("multipart/form-data", b"--XyZ\r\n" + FILE + b"\r\n--XyZ--\r\n"),
    "empty-boundary": ("multipart/form-data; boundary=", b"----\r\n"),
    "no-final-boundary": (f"multipart/form-data; boundary={B}",
                          b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.json"\r\n\r\n'
                          + FILE + b"\r\n"),
    "part-without-headers": (f"multipart/form-data; boundary={B}", b"--XyZ\r\n" + FILE + b"\r\n--XyZ--\r\n"),
    "part-not-form-data": (f"multipart/form-data; boundary={B}",
                           b"--XyZ\r\nContent-Disposition: attachment\r\n\r\n" + FILE + b"\r\n--XyZ--\r\n"),
    "part-without-name": (f"multipart/form-data; boundary={B}",
                          b'--XyZ\r\nContent-Disposition: form-data; filename="a.json"\r\n\r\n'
                          + FILE + b"\r\n--XyZ--\r\n"),
    "part-headers-not-utf8": (f"multipart/form-data; boundary={B}",
                              b'--XyZ\r\nContent-Disposition: form-data; name="\xff\xfe"\r\n\r\n'
                              + FILE + b"\r\n--XyZ--\r\n"),
    "not-multipart-after-all": ("multipart/form-dataxyz; boundary=XyZ", b"--XyZ--\r\n"),
    "no-file-field": (f"multipart/form-data; boundary={B}",
                      b'--XyZ\r\nContent-Disposition: form-data; name="other"\r\n\r\nhi\r\n--XyZ--\r\n'),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_MULTIPART))
async def test_malformed_multipart_import_is_400(app: RunningApp, api: Api, case: str) -> None:
    ann = await api.register_and_login("ann@example.com")
    content_type, body = MALFORMED_MULTIPART[case]
    resp = await ann.request("POST", "/api/import", data=body, headers={"Content-Type": content_type})
    assert resp.status == 400, resp.text
    assert resp.error_code in ("invalid_multipart", "invalid_import_file"), resp.text
    assert (await ann.get("/api/chats")).json["items"] == []


async def test_a_well_formed_multipart_import_still_works(app: RunningApp, api: Api) -> None:
    ann = await api.register_and_login("ann@example.com")
    chat = (await ann.post("/api/chats", {"title": "Round trip"})).json
    exported = (await ann.get(f"/api/chats/{chat['id']}/export")).text.encode()
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="c.json"\r\n'
            b"Content-Type: application/json\r\n\r\n" + exported + b"\r\n--XyZ--\r\n")
    resp = await ann.request("POST", "/api/import", data=body,
                             headers={"Content-Type": 'multipart/form-data; boundary="XyZ"'})
    assert resp.status == 200, resp.text
    assert [c["title"] for c in resp.json["imported"]] == ["Round trip"]


OUT_OF_RANGE = [
    ("to", "9999-12-31"),  # the end of that day is past what a datetime holds
    ("from", "0001-01-01T00:00:00+01:00"),  # year 0 once in UTC
    ("to", "9999-12-31T23:59:59-05:00"),  # year 10000 once in UTC
    ("from", "9" * 20),  # epoch seconds past year 9999
    ("to", "9" * 400),  # float('9' * 400) is inf
    ("from", "nan"),
    ("to", "inf"),
    ("from", "2026-02-30"),
    ("to", "2026-01-01T25:00"),
]


@pytest.mark.parametrize(("name", "value"), OUT_OF_RANGE)
async def test_usage_dates_out_of_range_are_422(app: RunningApp, api: Api, name: str, value: str) -> None:
    ann = await api.register_and_login("ann@example.com")
    resp = await ann.get(f"/api/usage?{name}={quote(value)}")
    assert (resp.status, resp.error_code) == (422, "validation_error"), resp.text
    assert resp.json["error"]["field"] == name


@pytest.mark.parametrize(("query", "echo"), [
    ("from=0001-01-01", ("0001-01-01T00:00:00.000Z", None)),
    ("to=9999-12-30", (None, "9999-12-31T00:00:00.000Z")),
    ("from=2026-01-01&to=2026-01-31", ("2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z")),
])
async def test_usage_dates_at_the_edges_are_accepted(
    app: RunningApp, api: Api, query: str, echo: tuple[str | None, str | None]
) -> None:
    ann = await api.register_and_login("ann@example.com")
    resp = await ann.get(f"/api/usage?{query}")
    assert resp.status == 200, resp.text
    assert (resp.json["from"], resp.json["to"]) == echo


def _mutants() -> list[bytes]:
    """Valid PNG, JPEG and WebP avatars with a few bytes changed or cut, deterministically."""
    rnd = random.Random(18)
    out = [b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 5) + b"IHDR" + b"\x00" * 9]  # truncated IHDR
    for fmt in ("PNG", "JPEG", "WEBP"):
        buf = io.BytesIO()
        Image.new("RGB", (24, 24), (200, 30, 30)).save(buf, fmt)
        base = buf.getvalue()
        for _ in range(40):
            mutant = bytearray(base)
            for _ in range(rnd.randint(1, 6)):
                mutant[rnd.randrange(len(mutant))] = rnd.randrange(256)
            out.append(bytes(mutant[: rnd.randrange(12, len(mutant) + 1)]))
    return out


async def test_corrupt_avatar_images_are_422(app: RunningApp, api: Api) -> None:
    admin = await api.register_and_login("admin@example.com")
    agent = (await admin.post("/api/agents", {"name": "Pic"})).json
    statuses = set()
    for data in _mutants():
        resp = await admin.request("PUT", f"/api/agents/{agent['id']}/avatar", data=data,
                                   headers={"Content-Type": "application/octet-stream"})
        assert resp.status in (200, 422), (resp.status, resp.text, data[:40])
        statuses.add(resp.status)
    assert 422 in statuses
