"""Structure from text formats: HTML, Markdown, CSV, plain text and source code.

Each reader turns decoded text into Blocks (headings, paragraphs, table rows, code) with
the section they sit under, for chunking (services/chunking.py). Runs in the isolated
extraction worker (services/extraction.py).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from gust.domain.files import Block, BlockKind

MAX_CSV_FIELD = 1 << 20


def paragraphs(text: str) -> list[str]:
    """Runs of non-blank lines."""
    return [part.strip() for part in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if part.strip()]


def text_blocks(text: str) -> Iterator[Block]:
    for paragraph in paragraphs(text):
        yield Block(paragraph)


_DEFINITION = re.compile(
    r"^(?:export\s+)?(?:pub\s+)?(?:public\s+|private\s+)?(?:async\s+)?(?:static\s+)?"
    r"(?:def|class|function|func|fn|struct|impl|interface|enum|trait|module|type)\s+([A-Za-z_]\w*)"
)


def code_blocks(text: str) -> Iterator[Block]:
    """Source split at blank lines; the section is the latest top-level definition."""
    section: str | None = None
    for part in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        if not part.strip():
            continue
        for line in part.splitlines():
            match = _DEFINITION.match(line)
            if match:
                section = match.group(1)
                break
        yield Block(part.strip("\n"), "code", section=section)


_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")


def markdown_blocks(text: str) -> Iterator[Block]:
    """Headings (ATX and setext), fenced code, table rows and paragraphs, in order."""
    trail: list[tuple[int, str]] = []
    lines = text.replace("\r\n", "\n").split("\n")
    buffer: list[str] = []
    header: list[str] | None = None

    def section() -> str | None:
        return " › ".join(title for _level, title in trail) or None

    def flush() -> Iterator[Block]:
        if buffer and any(line.strip() for line in buffer):
            yield Block("\n".join(buffer).strip(), section=section())
        buffer.clear()

    def heading(level: int, title: str) -> Block:
        while trail and trail[-1][0] >= level:
            trail.pop()
        trail.append((level, title))
        return Block(title, "heading", section=section())

    index = 0
    while index < len(lines):
        line = lines[index]
        if fence := _FENCE.match(line):
            yield from flush()
            code: list[str] = []
            index += 1
            while index < len(lines) and not lines[index].lstrip().startswith(fence.group(1)):
                code.append(lines[index])
                index += 1
            if code:
                yield Block("\n".join(code), "code", section=section())
        elif atx := _ATX.match(line):
            yield from flush()
            yield heading(len(atx.group(1)), atx.group(2).strip())
        elif _SETEXT.match(line) and len(buffer) == 1 and buffer[0].strip():
            title = buffer.pop().strip()
            yield heading(1 if line.strip().startswith("=") else 2, title)
        elif line.strip().startswith("|") and line.strip().endswith("|"):
            yield from flush()
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if _TABLE_RULE.match(line):
                pass
            elif header is None:
                header = cells
            else:
                yield Block(row_text(header, cells), "row", section=section())
        elif not line.strip():
            header = None  # a blank line ends a table
            yield from flush()
        else:
            buffer.append(line)
        index += 1
    yield from flush()


def row_text(header: list[str] | None, cells: list[str]) -> str:
    """A table row as text that keeps each value's column name ("name: Ada; age: 36")."""
    if not header:
        return " | ".join(cell for cell in cells if cell)
    parts = []
    for position, cell in enumerate(cells):
        if not cell:
            continue
        name = header[position] if position < len(header) and header[position] else None
        parts.append(f"{name}: {cell}" if name else cell)
    return "; ".join(parts)


def csv_blocks(text: str) -> Iterator[Block]:
    """One row block per record, each with the header's column names."""
    sample = text[:20_000]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    csv.field_size_limit(MAX_CSV_FIELD)
    reader = csv.reader(text.splitlines(), dialect)
    header: list[str] | None = None
    for cells in reader:
        cleaned = [cell.strip() for cell in cells]
        if not any(cleaned):
            continue
        if header is None:
            header = cleaned
            continue
        yield Block(row_text(header, cleaned), "row")


_SKIP_TAGS = ("script", "style", "noscript", "template", "svg", "head", "iframe", "object", "canvas")
_BLOCK_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6", "p", "li", "pre", "tr", "blockquote", "dt", "dd",
               "figcaption", "caption", "td", "th")


def html_blocks(text: str) -> Iterator[Block]:
    """Headings, paragraphs, list items, code and table rows of an HTML page, in order."""
    from bs4 import BeautifulSoup, Tag

    soup = BeautifulSoup(text, "lxml")
    for tag in soup.find_all(_SKIP_TAGS):
        tag.decompose()
    title = soup.title.get_text(" ", strip=True) if soup.title else None
    root = soup.body or soup
    trail: list[tuple[int, str]] = []
    found = 0
    header: list[str] | None = None
    blocks: list[Block] = []
    for element in root.find_all(_BLOCK_TAGS):
        if not isinstance(element, Tag) or element.find_parent(_BLOCK_TAGS) is not None:
            continue  # the outermost block carries the text of what it holds
        name = element.name
        section = " › ".join(t for _l, t in trail) or title
        if name == "tr":
            cells = [cell.get_text(" ", strip=True) for cell in element.find_all(["td", "th"])]
            if element.find("th") is not None and header is None:
                header = cells
                continue
            content = row_text(header, cells)
            kind: BlockKind = "row"
        else:
            content = element.get_text("\n" if name == "pre" else " ", strip=name != "pre")
            kind = "code" if name == "pre" else "paragraph"
        if not content.strip():
            continue
        found += len(content)
        if name in ("h1", "h2", "h3", "h4", "h5", "h6"):
            level = int(name[1])
            while trail and trail[-1][0] >= level:
                trail.pop()
            trail.append((level, content))
            blocks.append(Block(content, "heading", section=" › ".join(t for _l, t in trail)))
            continue
        blocks.append(Block(content, kind, section=section))
    rest = root.get_text("\n", strip=True)
    if found < len(rest) // 2:  # a page built of bare <div>s: its text, by paragraphs
        for part in paragraphs(rest):
            yield Block(part, section=title)
        return
    yield from blocks
