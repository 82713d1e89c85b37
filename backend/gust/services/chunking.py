"""Cutting a document's blocks into passages for retrieval, along its structure.

Blocks (headings, paragraphs, table rows, code: services/extract_*.py) are packed in
reading order into passages of at most `max_tokens` (about 500) tokens. A passage never
straddles two pages (pages and slides are what citations point at), and a new section (a
heading, another sheet) starts a new passage once the current one holds `min_tokens`, so
short sections are not left as crumbs (a table under another sheet or heading always
starts one); a passage's page and section are those of its first block. A block larger
than a passage is split at sentences (lines, for code and rows), then words. A passage
that continues the same section repeats the end of the previous one (about
`overlap_tokens`), so a sentence cut at the boundary is whole in one of them; table rows
do not overlap (each row names its columns and stands alone).

Tokens are estimated, not counted with a model's tokenizer (the embedder is chosen
elsewhere): about four characters per token for alphabetic scripts and one per
character for CJK, close to what BPE tokenizers give.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gust.domain.files import Block

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？;])\s+")


@dataclass(frozen=True, slots=True)
class ChunkingPolicy:
    max_tokens: int = 500
    min_tokens: int = 100
    overlap_tokens: int = 60


@dataclass(frozen=True, slots=True)
class Passage:
    ordinal: int
    text: str
    page: int | None
    section: str | None


def estimate_tokens(text: str) -> int:
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def chunk_blocks(blocks: Iterable[Block], policy: ChunkingPolicy = ChunkingPolicy()) -> Iterator[Passage]:
    """Passages in reading order, numbered from 0."""
    ordinal = 0
    parts: list[str] = []
    size = 0
    first: Block | None = None
    last: Block | None = None
    for block in blocks:
        for piece in _pieces(block, policy.max_tokens - policy.overlap_tokens):
            tokens = estimate_tokens(piece.text) + 1
            if parts and first is not None and last is not None:
                new_page = piece.page != first.page
                new_section = piece.kind == "heading" or piece.section != last.section
                # A table under another sheet or heading never joins the previous one.
                new_table = piece.kind == "row" and piece.section != last.section
                full = size + tokens > policy.max_tokens
                if full or new_page or new_table or (new_section and size >= policy.min_tokens):
                    yield Passage(ordinal, "\n\n".join(parts), first.page, first.section)
                    ordinal += 1
                    # Rows stand alone (each names its columns): only prose and code overlap.
                    continues = full and not new_section and not new_page and piece.kind != "row"
                    overlap = _tail(parts, policy.overlap_tokens) if continues else ""
                    parts, size = ([overlap], estimate_tokens(overlap)) if overlap else ([], 0)
                    first = piece
            if first is None or not parts:
                first = piece
            parts.append(piece.text)
            size += tokens
            last = piece
    if parts and first is not None:
        yield Passage(ordinal, "\n\n".join(parts), first.page, first.section)


def _pieces(block: Block, limit: int) -> Iterator[Block]:
    """The block itself, or consecutive parts of it that each fit in `limit` tokens."""
    text = block.text.strip()
    if not text:
        return
    if estimate_tokens(text) <= limit:
        yield block if text == block.text else Block(text, block.kind, block.page, block.section)
        return
    separator = "\n" if block.kind in ("code", "row") else " "
    units = text.split("\n") if block.kind == "code" else _SENTENCE_END.split(text)
    current: list[str] = []
    size = 0
    for unit in units:
        for part in _split_long(unit, limit):
            tokens = estimate_tokens(part) + 1
            if current and size + tokens > limit:
                yield Block(separator.join(current), block.kind, block.page, block.section)
                current, size = [], 0
            current.append(part)
            size += tokens
    if current:
        yield Block(separator.join(current), block.kind, block.page, block.section)


def _split_long(unit: str, limit: int) -> Iterator[str]:
    """A sentence or line longer than `limit` tokens, cut at words (or characters, for a
    run without spaces such as minified code or CJK text)."""
    if estimate_tokens(unit) <= limit:
        yield unit
        return
    words = unit.split(" ")
    current: list[str] = []
    size = 0
    for word in words:
        tokens = estimate_tokens(word) + 1
        if tokens > limit:
            if current:
                yield " ".join(current)
                current, size = [], 0
            step = max(1, limit * (1 if _CJK.search(word) else 4))
            for start in range(0, len(word), step):
                yield word[start:start + step]
            continue
        if current and size + tokens > limit:
            yield " ".join(current)
            current, size = [], 0
        current.append(word)
        size += tokens
    if current:
        yield " ".join(current)


def _tail(parts: list[str], tokens: int) -> str:
    """About the last `tokens` tokens of a passage, starting at a sentence or word boundary."""
    text = "\n\n".join(parts)
    if tokens <= 0:
        return ""
    cut = max(0, len(text) - tokens * 4)
    tail = text[cut:]
    sentence = _SENTENCE_END.search(tail)
    if sentence and sentence.end() < len(tail) * 2 // 3:
        return tail[sentence.end():].strip()
    space = tail.find(" ")
    return (tail[space + 1:] if 0 <= space < len(tail) // 3 else tail).strip()
