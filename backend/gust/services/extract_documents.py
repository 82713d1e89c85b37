"""Structure from documents: PDF (pypdf), DOCX (python-docx), PPTX (python-pptx), XLSX (openpyxl).

Office files are ZIP packages, and the libraries open them with zipfile themselves,
inflating whatever a part claims. So a package goes through services/safe_archive.py
first: every XML part is inflated with real-size, ratio, count and time limits and
refused if it declares a DTD (the door to billion-laughs entity expansion; OOXML never
needs one); the library then reads a rebuilt, uncompressed package holding only those
vetted parts (media and embedded objects are left empty: only text is wanted).

PDFs: pypdf with its own per-stream decompression limits; a password-protected file that
does not open with the empty password is `file_encrypted`. Everything here runs inside
the isolated extraction worker, whose memory and CPU caps bound what the libraries do.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

from gust.domain.files import Block, ExtractionFailed
from gust.services.extract_text import paragraphs, row_text
from gust.services.safe_archive import ArchiveLimits, read_zip

_XML_PARTS = (".xml", ".rels", ".vml")


def failed(code: str, message: str, status: int = 422) -> ExtractionFailed:
    error = ExtractionFailed(message, code=code)
    error.status = status
    return error


# -- PDF -----------------------------------------------------------------------------

def pdf_blocks(data: bytes, pages_seen: list[int]) -> Iterator[Block]:
    """Paragraphs per page; the section is the latest outline entry (bookmark) at or before it."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, LimitReachedError, PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                opened = bool(reader.decrypt(""))
            except Exception:  # noqa: BLE001 - an unknown cipher is still "cannot open"
                opened = False
            if not opened:
                raise failed("file_encrypted", "the PDF is protected by a password")
        pages = reader.pages
        pages_seen.append(len(pages))
        sections = _outline_sections(reader)
        section: str | None = None
        for number, page in enumerate(pages, start=1):
            section = sections.get(number, section)
            text = page.extract_text() or ""
            for paragraph in paragraphs(text):
                yield Block(paragraph, page=number, section=section)
    except FileNotDecryptedError:
        raise failed("file_encrypted", "the PDF is protected by a password") from None
    except LimitReachedError:
        raise failed("file_too_complex", "the PDF holds a stream that inflates past the limit", 413) from None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError) as exc:
        raise failed("file_corrupt", f"the PDF cannot be read ({type(exc).__name__})") from None


def _outline_sections(reader: Any) -> dict[int, str]:
    """First page (1-based) → the title of the first outline entry that starts on it."""
    found: dict[int, str] = {}

    def walk(items: list[Any], depth: int) -> None:
        if depth > 8:
            return
        for item in items:
            if isinstance(item, list):
                walk(item, depth + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)
            except Exception:  # noqa: BLE001, S112 - a broken bookmark only loses a section name
                continue
            title = str(getattr(item, "title", "") or "").strip()
            if page is not None and page >= 0 and title:
                found.setdefault(page + 1, title)

    try:
        walk(list(reader.outline), 0)
    except Exception:  # noqa: BLE001 - no usable outline: no section names
        return {}
    return found


# -- Office packages -------------------------------------------------------------------

def vetted_package(data: bytes, max_unpacked: int) -> io.BytesIO:
    """The package rebuilt from its XML parts, each inflated within limits and free of DTDs."""
    limits = ArchiveLimits(max_unpacked_bytes=max_unpacked, max_members=10_000, max_ratio=1000.0,
                           max_seconds=20.0)
    members = read_zip(data, limits, want=lambda name: name.lower().endswith(_XML_PARTS))
    try:
        names = [info.filename for info in zipfile.ZipFile(io.BytesIO(data)).infolist() if not info.is_dir()]
    except zipfile.BadZipFile:
        raise failed("file_corrupt", "the document is not a readable package") from None
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as package:
        vetted = set()
        for member in members:
            _refuse_dtd(member.name, member.data)
            package.writestr(member.name, member.data)
            vetted.add(member.name)
        for name in names:
            if name not in vetted:
                package.writestr(name, b"")  # media, embedded objects: not read
    out.seek(0)
    return out


def _refuse_dtd(name: str, content: bytes) -> None:
    text = content[:1 << 16]
    if text.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = text.decode("utf-16", "replace").encode()
    upper = text.upper()
    if b"<!DOCTYPE" in upper or b"<!ENTITY" in upper:
        raise failed("file_unsafe_xml", f"{name!r} declares a DTD, which Office documents never do")


# What the Office libraries raise on a malformed package (SyntaxError: ElementTree's ParseError).
_OFFICE_ERRORS = (
    KeyError, ValueError, TypeError, AttributeError, IndexError, zipfile.BadZipFile, SyntaxError
)


def docx_blocks(data: bytes, max_unpacked: int) -> Iterator[Block]:
    """Paragraphs and table rows in body order; headings (Title, Heading n) make the section."""
    from docx import Document
    from docx.table import Table
    from lxml.etree import LxmlError

    package = vetted_package(data, max_unpacked)
    try:
        document = Document(package)
        trail: list[tuple[int, str]] = []
        for item in _body_items(document.element.body, document, 0):
            section = " › ".join(title for _level, title in trail) or None
            if isinstance(item, Table):
                header: list[str] | None = None
                for row in item.rows:
                    cells = _unique_cells([cell.text.strip() for cell in row.cells])
                    if header is None:
                        header = cells
                        yield Block(" | ".join(c for c in cells if c), "row", section=section)
                        continue
                    yield Block(row_text(header, cells), "row", section=section)
                continue
            text = item.text.strip()
            if not text:
                continue
            level = _heading_level(item.style.name if item.style is not None else "")
            if level is None:
                yield Block(text, section=section)
                continue
            while trail and trail[-1][0] >= level:
                trail.pop()
            trail.append((level, text))
            yield Block(text, "heading", section=" › ".join(title for _level, title in trail))
    except (LxmlError, *_OFFICE_ERRORS) as exc:
        raise failed("file_corrupt", f"the DOCX cannot be read ({type(exc).__name__})") from None


def _body_items(container: Any, parent: Any, depth: int) -> Iterator[Any]:
    """Paragraphs and tables in body order, including those inside content controls
    (w:sdt: tables of contents, template fields), which python-docx's iterator skips."""
    from docx.oxml.ns import qn
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in container.iterchildren():
        if child.tag == qn("w:p"):
            yield Paragraph(child, parent)
        elif child.tag == qn("w:tbl"):
            yield Table(child, parent)
        elif child.tag == qn("w:sdt") and depth < 8:
            content = child.find(qn("w:sdtContent"))
            if content is not None:
                yield from _body_items(content, parent, depth + 1)


def _unique_cells(cells: list[str]) -> list[str]:
    """python-docx repeats a merged cell's text once per grid column: keep it once."""
    out: list[str] = []
    for cell in cells:
        out.append("" if out and cell and cell == out[-1] else cell)
    return out


def _heading_level(style: str | None) -> int | None:
    name = (style or "").strip().lower()
    if name == "title":
        return 0
    if name.startswith("heading"):
        digits = name.removeprefix("heading").strip()
        return int(digits) if digits.isdigit() else 1
    return None


def pptx_blocks(data: bytes, max_unpacked: int, pages_seen: list[int]) -> Iterator[Block]:
    """Per slide (page = slide number, section = its title): text frames, tables, notes."""
    from lxml.etree import LxmlError
    from pptx import Presentation

    package = vetted_package(data, max_unpacked)
    try:
        presentation = Presentation(package)
        slides = list(presentation.slides)
        pages_seen.append(len(slides))
        for number, slide in enumerate(slides, start=1):
            title_shape = slide.shapes.title
            title = title_shape.text_frame.text.strip() if title_shape is not None else ""
            section = title or f"Slide {number}"
            if title:
                yield Block(title, "heading", page=number, section=section)
            for shape in _flat_shapes(slide.shapes):
                if title_shape is not None and shape.shape_id == title_shape.shape_id:
                    continue
                if shape.has_text_frame:
                    for paragraph in shape.text_frame.paragraphs:
                        text = "".join(run.text for run in paragraph.runs).strip()
                        if text:
                            yield Block(text, page=number, section=section)
                if getattr(shape, "has_table", False):
                    header: list[str] | None = None
                    for row in shape.table.rows:
                        cells = [cell.text.strip() for cell in row.cells]
                        text = row_text(header, cells)
                        header = header or cells
                        yield Block(text, "row", page=number, section=section)
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.text.strip()
                if notes:
                    yield Block(notes, page=number, section=section)
    except (LxmlError, *_OFFICE_ERRORS) as exc:
        raise failed("file_corrupt", f"the PPTX cannot be read ({type(exc).__name__})") from None


def _flat_shapes(shapes: Any, depth: int = 0) -> Iterator[Any]:
    """A slide's shapes with the members of groups in place of the groups."""
    for shape in shapes:
        if hasattr(shape, "shapes") and depth < 16:  # a group shape
            yield from _flat_shapes(shape.shapes, depth + 1)
        else:
            yield shape


def xlsx_blocks(data: bytes, max_unpacked: int) -> Iterator[Block]:
    """One row block per non-empty row (with the sheet's first row as column names); the
    section is the sheet's name. Formulas give their cached values."""
    from openpyxl import load_workbook

    package = vetted_package(data, max_unpacked)
    try:
        workbook = load_workbook(package, read_only=True, data_only=True)
        for sheet in workbook.worksheets:
            header: list[str] | None = None
            for values in sheet.iter_rows(values_only=True):
                cells = ["" if value is None else str(value).strip() for value in values]
                if not any(cells):
                    continue
                if header is None:
                    header = cells
                    yield Block(" | ".join(c for c in cells if c), "row", section=sheet.title)
                    continue
                yield Block(row_text(header, cells), "row", section=sheet.title)
        workbook.close()
    except _OFFICE_ERRORS as exc:
        raise failed("file_corrupt", f"the XLSX cannot be read ({type(exc).__name__})") from None
