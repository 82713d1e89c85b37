"""Types come from the bytes: magic numbers, the ZIP directory, and the shape of text."""

from __future__ import annotations

import io
import zipfile

import pytest

from gust.domain.files import UnsupportedFileType
from gust.services.file_types import (
    HEAD_BYTES,
    TAIL_BYTES,
    decode_text,
    needs_whole_file,
    refuse_polyglot,
    sniff,
    sniff_container,
)
from tests.support import documents


def kind_of(data: bytes) -> str:
    kind = sniff(data[:HEAD_BYTES])
    if needs_whole_file(kind):
        kind = sniff_container(data)
    return kind.name


def plain_zip(names: list[str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return out.getvalue()


@pytest.mark.parametrize(
    ("expected", "data"),
    [
        ("pdf", documents.pdf([["hello"]])),
        ("docx", documents.docx([("h1", "Title"), ("p", "text")])),
        ("pptx", documents.pptx([("Slide", ["point"])])),
        ("xlsx", documents.xlsx({"Sheet": [["a", 1]]})),
        ("png", documents.image("PNG")),
        ("jpeg", documents.image("JPEG")),
        ("gif", documents.image("GIF")),
        ("webp", documents.image("WEBP")),
    ],
)
def test_binary_types_are_known_by_their_magic(expected: str, data: bytes) -> None:
    assert kind_of(data) == expected


def test_office_types_come_from_the_package_not_the_first_entry() -> None:
    # [Content_Types].xml last, the main part first: still a DOCX.
    data = plain_zip(["word/document.xml", "_rels/.rels", "[Content_Types].xml"])
    assert kind_of(data) == "docx"
    assert kind_of(plain_zip(["[Content_Types].xml", "xl/workbook.xml"])) == "xlsx"


@pytest.mark.parametrize(
    "data",
    [
        plain_zip(["readme.txt", "word/document.xml"]),  # no [Content_Types].xml
        plain_zip(["[Content_Types].xml", "content.xml"]),  # not word/ppt/xl
        b"PK\x03\x04" + b"\x00" * 100,  # a ZIP header with no directory
        b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 4,
        b"\x1f\x8b\x08\x00" + bytes(range(256)) * 4,  # gzip
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600,  # a legacy .doc
        bytes(range(256)) * 8,
    ],
)
def test_anything_else_is_unsupported(data: bytes) -> None:
    with pytest.raises(UnsupportedFileType) as refused:
        kind_of(data)
    assert refused.value.status == 415


def test_a_password_protected_office_file_is_accepted_to_fail_as_encrypted() -> None:
    # The OLE2 directory may sit anywhere, past the head: the whole file is looked at.
    data = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 20_000 + "EncryptedPackage".encode("utf-16-le")
    assert kind_of(data) == "encrypted_office"


@pytest.mark.parametrize(
    ("expected", "text"),
    [
        ("html", "<!DOCTYPE html>\n<html><head><title>x</title></head><body><p>hi</p></body></html>"),
        ("html", "  <html lang='en'>\n<body><h1>Title</h1><p>para</p></body></html>"),
        ("csv", "name,age,city\nAda,36,London\nAlan,41,Wilmslow\nGrace,85,Arlington\n"),
        ("csv", "a;b;c\n1;2;3\n4;5;6\n"),
        ("markdown", "# Title\n\nSome *text* with a [link](https://example.org).\n\n- one\n- two\n"),
        ("code", "import os\nimport sys\n\n\ndef main() -> int:\n    return 0\n\n\n"
                 "if __name__ == '__main__':\n    sys.exit(main())\n"),
        ("code", "#include <stdio.h>\nint main(void) {\n  printf(\"hi\");\n  return 0;\n}\n"),
        ("code", "#!/bin/sh\necho hello\n"),
        ("text", "Dear reader,\n\nThis is a letter. It has sentences, commas, and no markup at all.\n\n"
                 "Kind regards\n"),
        ("text", "Grüße aus Köln — naïve café\n"),
    ],
)
def test_text_kinds_come_from_the_content(expected: str, text: str) -> None:
    assert kind_of(text.encode()) == expected


def test_text_encodings() -> None:
    assert kind_of("\ufeffhello world\n".encode()) == "text"
    assert kind_of("héllo wörld\n".encode("utf-16")) == "text"
    assert kind_of("caf\xe9 cr\xe8me\n".encode("cp1252")) == "text"
    # A multi-byte character cut by the head is still text.
    head = ("é" * (HEAD_BYTES // 2)).encode()[: HEAD_BYTES - 1]
    assert decode_text(head, partial=True) is not None
    assert decode_text(head) is not None  # cp1252 fallback, not "binary"
    assert decode_text(b"text\x00with a NUL") is None


def check_polyglot(data: bytes) -> None:
    refuse_polyglot(sniff(data[:HEAD_BYTES]), data[:HEAD_BYTES], data[-TAIL_BYTES:], len(data))


@pytest.mark.parametrize(
    "data",
    [
        documents.pdf([["hello"]]) + documents.docx([("p", "hidden")]),  # PDF + ZIP
        documents.image("GIF") + plain_zip(["a.class"]),  # a GIFAR
        documents.image("PNG") + plain_zip(["x"]),
        documents.pdf([["a"]]) + plain_zip([f"m{i}.xml" for i in range(3000)]),  # a directory > the tail
        documents.pdf([["a"]]) + plain_zip(["x"]) + b"\n%%EOF\n",  # bytes after the end record
        documents.image("JPEG")[:20] + b"%PDF-1.4 " + documents.image("JPEG")[20:],
    ],
)
def test_a_file_that_is_two_formats_at_once_is_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedFileType):
        check_polyglot(data)


def test_ordinary_files_are_not_taken_for_polyglots() -> None:
    for data in (documents.pdf([["a"]]), documents.image("PNG"), documents.docx([("p", "x")]),
                 b"text that mentions PK\x05\x06 and %PDF- in passing\n"):
        check_polyglot(data)
    # The end record's signature alone, pointing at no central directory, is not a ZIP.
    check_polyglot(documents.pdf([["a"]]) + b"PK\x05\x06" + bytes(18) + b"%%EOF\n")
