"""Extraction keeps the text and its anchors: page, slide, heading, sheet (run in-process here;
tests/hostile/test_file_extraction.py runs it in the isolated worker)."""

from __future__ import annotations

from typing import Any

import pytest

from gust.domain.errors import GustError
from gust.services.extraction import extract_file
from tests.support import documents


def passages(data: bytes, **params: Any) -> tuple[int | None, list[dict[str, Any]]]:
    items = list(extract_file(data, params))
    return items[0]["pages"], [item["passage"] for item in items[1:]]


def find(found: list[dict[str, Any]], needle: str) -> dict[str, Any]:
    hits = [p for p in found if needle in p["text"]]
    assert hits, f"{needle!r} not in any passage"
    return hits[0]


def test_pdf_text_keeps_its_page_numbers() -> None:
    data = documents.pdf([
        ["Chapter one begins here.", "The cat sat on the mat."],
        ["Second page: the answer is 42."],
        ["Third page talks about (parentheses) and backslashes."],
    ])
    pages, found = passages(data)
    assert pages == 3
    assert find(found, "cat sat")["page"] == 1
    assert find(found, "answer is 42")["page"] == 2
    assert find(found, "(parentheses)")["page"] == 3
    assert [p["ordinal"] for p in found] == list(range(len(found)))


def test_pdf_outline_names_the_section() -> None:
    import io

    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(documents.pdf([["intro text"], ["method text"]]))))
    writer.add_outline_item(title="Introduction", page_number=0)
    writer.add_outline_item(title="Method", page_number=1)
    out = io.BytesIO()
    writer.write(out)
    _pages, found = passages(out.getvalue())
    assert find(found, "intro text")["section"] == "Introduction"
    assert find(found, "method text")["section"] == "Method"


def test_docx_headings_make_sections_and_table_rows_keep_column_names() -> None:
    data = documents.docx(
        [("h1", "Installation"), ("p", "Run the installer twice."), ("h2", "On Linux"),
         ("p", "Use the tarball."), ("h1", "Usage"), ("p", "Type gust serve.")],
        table=[["Setting", "Default"], ["PORT", "8100"], ["DATA_DIR", "./data"]],
    )
    pages, found = passages(data, min_tokens=0)
    assert pages is None
    assert find(found, "installer twice")["section"] == "Installation"
    assert find(found, "tarball")["section"] == "Installation › On Linux"
    assert find(found, "gust serve")["section"] == "Usage"
    assert "Setting: PORT; Default: 8100" in find(found, "PORT")["text"]


def test_pptx_slides_are_pages_and_titles_are_sections() -> None:
    data = documents.pptx([("Quarterly plan", ["Hire two people"]), ("Risks", ["Budget overrun"])])
    pages, found = passages(data)
    assert pages == 2
    hire = find(found, "Hire two people")
    assert (hire["page"], hire["section"]) == (1, "Quarterly plan")
    budget = find(found, "Budget overrun")
    assert (budget["page"], budget["section"]) == (2, "Risks")


def test_xlsx_rows_carry_the_header_and_the_sheet() -> None:
    data = documents.xlsx({
        "People": [["name", "city"], ["Ada", "London"], ["Alan", "Wilmslow"]],
        "Prices": [["item", "price"], ["tea", 2.5]],
    })
    _pages, found = passages(data)
    ada = find(found, "Ada")
    assert "name: Ada; city: London" in ada["text"] and ada["section"] == "People"
    tea = find(found, "tea")
    assert "item: tea; price: 2.5" in tea["text"] and tea["section"] == "Prices"


def test_csv_rows_carry_the_header() -> None:
    text = "name,city,born\n" + "".join(f"Person{i},Town{i},{1900 + i}\n" for i in range(50))
    _pages, found = passages(text.encode())
    assert "name: Person7; city: Town7; born: 1907" in find(found, "Person7;")["text"]


def test_html_drops_scripts_and_keeps_headings_and_tables() -> None:
    html = (b"<!doctype html><html><head><title>Doc</title><style>p{}</style></head><body>"
            b"<script>secret_token()</script><h1>Guide</h1><p>Read <b>this</b> first.</p>"
            b"<h2>Table</h2><table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>"
            b"</body></html>")
    _pages, found = passages(html, min_tokens=0)
    text = "\n".join(p["text"] for p in found)
    assert "secret_token" not in text and "p{}" not in text
    assert find(found, "Read this first.")["section"] == "Guide"
    assert find(found, "k: a; v: 1")["section"] == "Guide › Table"


def test_markdown_sections_code_and_tables() -> None:
    md = ("# Manual\n\nIntro words.\n\n## Build\n\n```sh\nmake all\n```\n\n| flag | use |\n|---|---|\n"
          "| -v | verbose |\n\nSetext heading\n---\n\nUnder setext.\n")
    _pages, found = passages(md.encode(), min_tokens=0)
    assert find(found, "make all")["section"] == "Manual › Build"
    assert "flag: -v; use: verbose" in find(found, "-v")["text"]
    assert find(found, "Under setext.")["section"] == "Manual › Setext heading"


def test_source_code_sections_are_definitions() -> None:
    code = "import os\n\n\ndef alpha():\n    return 1\n\n\nclass Beta:\n    x = 2\n"
    _pages, found = passages(code.encode(), min_tokens=0, max_tokens=12, overlap_tokens=0)
    assert find(found, "class Beta")["section"] == "Beta"


def test_plain_text_in_other_encodings() -> None:
    _pages, found = passages("Grüße aus Köln.\n\nZweiter Absatz.".encode("utf-16"))
    assert "Grüße aus Köln." in found[0]["text"]
    _pages, found = passages("caf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("cp1252"))
    assert "café crème brûlée" in found[0]["text"]


def test_images_are_checked_not_chunked() -> None:
    items = list(extract_file(documents.image("PNG", (30, 20)), {}))
    assert items == [{"pages": None, "width_height": [30, 20]}]
    with pytest.raises(GustError) as refused:
        list(extract_file(documents.image("PNG", (300, 300)), {"max_image_pixels": 10_000}))
    assert refused.value.code == "image_too_large"


def test_the_recorded_kind_must_match_the_bytes() -> None:
    with pytest.raises(GustError) as refused:
        list(extract_file(b"just text\n", {"kind": "pdf"}))
    assert refused.value.code == "file_corrupt"


def test_too_much_text_fails_with_its_own_code() -> None:
    with pytest.raises(GustError) as refused:
        list(extract_file(("word " * 10_000).encode(), {"max_text_chars": 1000}))
    assert refused.value.code == "file_text_too_large" and refused.value.status == 413


def test_pptx_text_inside_grouped_shapes_is_read() -> None:
    import io

    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation(io.BytesIO(documents.pptx([("Grouped", ["outside"])])))
    group = presentation.slides[0].shapes.add_group_shape()
    box = group.shapes.add_textbox(Inches(1), Inches(1), Inches(2), Inches(1))
    box.text_frame.text = "inside a group"
    out = io.BytesIO()
    presentation.save(out)
    _pages, found = passages(out.getvalue())
    assert find(found, "inside a group")["section"] == "Grouped"


def test_docx_text_inside_content_controls_is_read() -> None:
    import io

    from docx import Document
    from docx.oxml import parse_xml

    document = Document(io.BytesIO(documents.docx([("p", "before")])))
    w = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    sdt = parse_xml(f'<w:sdt xmlns:w="{w}"><w:sdtContent><w:p><w:r><w:t>inside a content control</w:t>'
                    "</w:r></w:p></w:sdtContent></w:sdt>")
    document.element.body.insert(0, sdt)
    out = io.BytesIO()
    document.save(out)
    _pages, found = passages(out.getvalue())
    assert "inside a content control" in found[0]["text"] and "before" in found[0]["text"]
