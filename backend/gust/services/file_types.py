"""What an uploaded file is, from its bytes alone (never its name or the client's type).

`sniff(head)` looks at the first bytes (HEAD_BYTES): the magic numbers of PDF, PNG, JPEG,
GIF, WebP, ZIP and OLE2; else whether the bytes are text, and then which kind of text
(HTML, CSV, Markdown, source code, plain). A ZIP is an Office document only when its
central directory lists `[Content_Types].xml` and the main part of a word processing,
presentation or spreadsheet package: `sniff_container(data)` reads the directory's names (no
member is inflated) with a bounded scan. Anything else raises UnsupportedFileType (415).
"""

from __future__ import annotations

import csv
import re
import struct
from dataclasses import dataclass

from gust.domain.files import UnsupportedFileType

HEAD_BYTES = 8192
TAIL_BYTES = 65_557  # a ZIP's end record (22 bytes) and the longest comment it may carry
MAX_DIRECTORY_ENTRIES = 25_000  # safe_archive's default member limit


@dataclass(frozen=True, slots=True)
class FileKind:
    name: str  # pdf, docx, pptx, xlsx, csv, html, markdown, text, code, png, jpeg, gif, webp
    content_type: str

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/")


_OOXML = "application/vnd.openxmlformats-officedocument."
KINDS = {
    kind.name: kind
    for kind in (
        FileKind("pdf", "application/pdf"),
        FileKind("docx", _OOXML + "wordprocessingml.document"),
        FileKind("pptx", _OOXML + "presentationml.presentation"),
        FileKind("xlsx", _OOXML + "spreadsheetml.sheet"),
        FileKind("csv", "text/csv"),
        FileKind("html", "text/html"),
        FileKind("markdown", "text/markdown"),
        FileKind("code", "text/x-source"),
        FileKind("text", "text/plain"),
        FileKind("png", "image/png"),
        FileKind("jpeg", "image/jpeg"),
        FileKind("gif", "image/gif"),
        FileKind("webp", "image/webp"),
        # Office's password protection wraps the package in an OLE2 file: accepted, so
        # that it ends `failed` with `file_encrypted` rather than "unsupported".
        FileKind("encrypted_office", "application/x-encrypted-office"),
    )
}
KIND_OF_CONTENT_TYPE = {kind.content_type: kind for kind in KINDS.values()}

_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP = b"PK\x03\x04"
_EMPTY_ZIP = b"PK\x05\x06"
_OOXML_MAIN = {"word/document.xml": "docx", "ppt/presentation.xml": "pptx", "xl/workbook.xml": "xlsx"}
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # central directory file header, 46 bytes
_EOCD = struct.Struct("<4s4H2LH")


def sniff(head: bytes) -> FileKind:
    """The kind of a file from its first bytes; a container ("zip", "ole2") needs `sniff_container`."""
    if head.startswith(b"%PDF-"):
        return KINDS["pdf"]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return KINDS["png"]
    if head.startswith(b"\xff\xd8\xff"):
        return KINDS["jpeg"]
    if head.startswith((b"GIF87a", b"GIF89a")):
        return KINDS["gif"]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return KINDS["webp"]
    if head.startswith((_ZIP, _EMPTY_ZIP)):
        return FileKind("zip", "application/zip")
    if head.startswith(_OLE2):
        return FileKind("ole2", "application/x-ole-storage")
    text = decode_text(head, partial=True)
    if text is None:
        raise UnsupportedFileType("the file's content is not a supported type")
    return _text_kind(text)


def refuse_polyglot(kind: FileKind, head: bytes, tail: bytes, size: int) -> None:
    """Refuse a file that is two formats at once (a PDF or an image that is also a ZIP, an
    image that is also a PDF): one reader would see what another never shows (a GIFAR).
    `tail` is the file's last TAIL_BYTES bytes (or all of it), `size` its length."""
    if kind.name in ("zip", "ole2"):
        return
    if _zip_end_record(tail, size - len(tail)):
        raise UnsupportedFileType(f"the file is a ZIP archive as well as {kind.name.upper()}")
    if kind.is_image and b"%PDF-" in head[:1024]:
        raise UnsupportedFileType(f"the file is a PDF as well as {kind.name.upper()}")


def _zip_end_record(tail: bytes, base: int) -> bool:
    """Whether `tail` (starting at offset `base` of the file) holds a ZIP end record that
    describes a central directory ending where the record begins, as ZIP readers accept it
    (with or without bytes before the archive or after the record)."""
    at = tail.rfind(_EMPTY_ZIP)
    while at >= 0:
        if at + _EOCD.size <= len(tail):
            fields = _EOCD.unpack_from(tail, at)
            directory_size, directory_offset = fields[5], fields[6]
            start = at - directory_size  # where the directory must begin, within `tail`
            if 0 < directory_size and directory_offset + directory_size <= base + at and (
                start < 0 or tail[start:start + 4] == b"PK\x01\x02"
            ):
                return True
        at = tail.rfind(_EMPTY_ZIP, 0, at)
    return False


def needs_whole_file(kind: FileKind) -> bool:
    """A container whose kind only its whole bytes tell (`sniff_container`)."""
    return kind.name in ("zip", "ole2")


def sniff_container(data: bytes) -> FileKind:
    """DOCX, PPTX or XLSX from a ZIP's central directory; a password-protected Office file
    from its OLE2 directory. Any other ZIP or OLE2 file (a legacy .doc) is unsupported."""
    if data.startswith(_OLE2):
        # Office's encryption stores the package as a stream named EncryptedPackage.
        if "EncryptedPackage".encode("utf-16-le") in data:
            return KINDS["encrypted_office"]
        raise UnsupportedFileType("legacy Office files (.doc, .xls, .ppt) are not supported; save as "
                                  "DOCX, XLSX or PPTX")
    names = set(_directory_names(data))
    if "[Content_Types].xml" in names:
        for main, kind in _OOXML_MAIN.items():
            if main in names:
                return KINDS[kind]
    raise UnsupportedFileType("archives are not supported; only DOCX, PPTX and XLSX documents are read")


def _directory_names(data: bytes) -> list[str]:
    """The names in a ZIP's central directory, without inflating anything; [] when unreadable."""
    at = data.rfind(_EMPTY_ZIP, max(0, len(data) - 65_557))
    if at < 0 or at + _EOCD.size > len(data):
        return []
    _sig, _disk, _cd_disk, _here, total, _size, offset, _comment = _EOCD.unpack_from(data, at)
    names: list[str] = []
    for _ in range(min(total, MAX_DIRECTORY_ENTRIES)):
        if offset + _CENTRAL.size > len(data):
            break
        fields = _CENTRAL.unpack_from(data, offset)
        if fields[0] != b"PK\x01\x02":
            break
        name_len, extra_len, comment_len = fields[10], fields[11], fields[12]
        start = offset + _CENTRAL.size
        names.append(data[start:start + name_len].decode("utf-8", "replace"))
        offset = start + name_len + extra_len + comment_len
    return names


def decode_text(data: bytes, *, partial: bool = False) -> str | None:
    """`data` as text when it is text (UTF-8, UTF-16 with a BOM, or a single-byte Windows
    encoding without control bytes); None for binary. `partial`: `data` may end mid-character."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            if not partial:
                return None
            return data[: len(data) - len(data) % 2].decode("utf-16", "replace")
    if b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if partial and exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
            text = data[: exc.start].decode("utf-8-sig")
        else:
            text = data.decode("cp1252", "replace")
    controls = sum(1 for char in text if ord(char) < 32 and char not in "\t\n\r\f\v\x1b")
    if controls > max(2, len(text) // 200):
        return None
    return text


_HTML = re.compile(r"^\s*(<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]|<!--)", re.IGNORECASE)
_HTML_TAGS = re.compile(r"<(p|div|h[1-6]|table|ul|ol|span|a\s+href)[\s>]", re.IGNORECASE)
_MD_LINE = re.compile(r"^(#{1,6} \S|```|~~~|\s{0,3}[-*+] \S|\s{0,3}\d+\. \S|>\s|\|.*\|\s*$)")
_MD_INLINE = re.compile(r"\[[^\]\n]+\]\([^)\s]+\)|\*\*[^*\n]+\*\*|`[^`\n]+`")
_CODE_LINE = re.compile(
    r"^\s*(#!|#include\s|import\s+[\w.{*]|from\s+[\w.]+\s+import\s|package\s+[\w.]+;?$|using\s+[\w.]+;"
    r"|(public|private|protected|static|export|async)\s|def\s+\w+\(|class\s+\w+[:({\s]|fn\s+\w+"
    r"|func\s+\w+|function\s*\w*\s*\(|(const|let|var)\s+\w+\s*=|return\b|if\s*\(|for\s*\(|while\s*\()"
)


def _text_kind(text: str) -> FileKind:
    if _HTML.match(text) and (_HTML_TAGS.search(text) or re.match(r"\s*<(!doctype|html)", text, re.I)):
        return KINDS["html"]
    lines = [line for line in text.splitlines()[:200] if line.strip()]
    if not lines:
        return KINDS["text"]
    if _looks_like_csv(lines):
        return KINDS["csv"]
    code = sum(1 for line in lines if _CODE_LINE.match(line)) + sum(
        1 for line in lines if line.rstrip().endswith((";", "{", "}", "):", "=>"))
    )
    markdown = sum(1 for line in lines if _MD_LINE.match(line)) + sum(
        1 for line in lines if _MD_INLINE.search(line)
    )
    if lines[0].startswith("#!") or code >= max(2, len(lines) // 4):
        if code > markdown:
            return KINDS["code"]
    if markdown >= max(2, len(lines) // 10):
        return KINDS["markdown"]
    return KINDS["text"]


def _looks_like_csv(lines: list[str]) -> bool:
    """Every row has the same number of fields (two or more) under one delimiter."""
    rows = lines[:50]
    if len(rows) > 2:
        rows = rows[:-1]  # the head may cut the last line
    if len(rows) < 2:
        return False
    for delimiter in (",", ";", "\t"):
        try:
            widths = {len(row) for row in csv.reader(rows, delimiter=delimiter)}
        except csv.Error:
            continue
        if len(widths) == 1 and (width := widths.pop()) >= 2 and (width > 2 or len(rows) >= 3):
            return True
    return False
