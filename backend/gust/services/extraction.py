"""Reading an uploaded file into passages, inside the isolated worker (ports/isolation.py).

`extract_file` is the worker's target: it never runs on the server's event loop, and the
worker's memory (RLIMIT_AS) and CPU caps bound whatever the parsing libraries do with a
hostile file. It trusts nothing it is given: the kind is sniffed again from the bytes
(services/file_types.py) and must agree with the one the server recorded.

It yields `{"pages": n | None}` first, then one `{"passage": {...}}` per passage in
reading order (services/chunking.py). A file that cannot be read raises ExtractionFailed
with a code of gust.domain.files.FILE_ERROR_CODES; the worker sends it back as that error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gust.domain.files import Block
from gust.services.chunking import ChunkingPolicy, chunk_blocks
from gust.services.extract_documents import docx_blocks, failed, pdf_blocks, pptx_blocks, xlsx_blocks
from gust.services.extract_text import code_blocks, csv_blocks, html_blocks, markdown_blocks, text_blocks
from gust.services.file_types import (
    HEAD_BYTES,
    FileKind,
    decode_text,
    needs_whole_file,
    sniff,
    sniff_container,
)

DEFAULTS: dict[str, Any] = {
    "max_unpacked_bytes": 64 << 20,  # an Office package's XML parts, inflated
    "max_text_chars": 10_000_000,
    "max_image_pixels": 50_000_000,
    "max_tokens": 500,
    "min_tokens": 100,
    "overlap_tokens": 60,
}


def sniff_bytes(data: bytes) -> FileKind:
    kind = sniff(data[:HEAD_BYTES])
    return sniff_container(data) if needs_whole_file(kind) else kind


def extract_file(data: bytes, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The worker's entry: `params` holds `kind` (the recorded kind's name) and the limits."""
    settings = {**DEFAULTS, **params}
    kind = sniff_bytes(data)
    if kind.name != settings.get("kind", kind.name):
        raise failed("file_corrupt", "the stored bytes are not the type recorded at upload")
    if kind.is_image:
        yield {"pages": None, "width_height": _check_image(data, int(settings["max_image_pixels"]))}
        return
    pages: list[int] = []
    blocks = _bounded(_blocks(kind, data, settings, pages), int(settings["max_text_chars"]))
    policy = ChunkingPolicy(int(settings["max_tokens"]), int(settings["min_tokens"]),
                            int(settings["overlap_tokens"]))
    passages = [
        {"ordinal": p.ordinal, "text": p.text, "page": p.page, "section": p.section}
        for p in chunk_blocks(blocks, policy)
    ]
    yield {"pages": pages[0] if pages else None}
    for passage in passages:
        yield {"passage": passage}


def _blocks(kind: FileKind, data: bytes, settings: dict[str, Any], pages: list[int]) -> Iterator[Block]:
    unpacked = int(settings["max_unpacked_bytes"])
    if kind.name == "pdf":
        return pdf_blocks(data, pages)
    if kind.name == "docx":
        return docx_blocks(data, unpacked)
    if kind.name == "pptx":
        return pptx_blocks(data, unpacked, pages)
    if kind.name == "xlsx":
        return xlsx_blocks(data, unpacked)
    if kind.name == "encrypted_office":
        raise failed("file_encrypted", "the document is protected by a password")
    text = decode_text(data)
    if text is None:
        raise failed("file_corrupt", "the file is not text after all")
    readers = {"html": html_blocks, "markdown": markdown_blocks, "csv": csv_blocks, "code": code_blocks}
    return readers.get(kind.name, text_blocks)(text)


def _bounded(blocks: Iterator[Block], max_chars: int) -> Iterator[Block]:
    total = 0
    for block in blocks:
        total += len(block.text)
        if total > max_chars:
            raise failed("file_text_too_large", f"the file holds more than {max_chars} characters of text",
                         413)
        yield block


def _check_image(data: bytes, max_pixels: int) -> list[int]:
    """Decode the header and check the pixel count (a small file can declare a huge canvas)."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            with Image.open(_reader(data)) as image:
                width, height = image.size
                if width * height > max_pixels:
                    raise failed("image_too_large", f"the image has more than {max_pixels} pixels", 413)
                image.verify()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise failed("image_too_large", f"the image has more than {max_pixels} pixels", 413) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise failed("file_corrupt", f"the image cannot be read ({type(exc).__name__})") from None
    return [width, height]


def _reader(data: bytes) -> Any:
    import io

    return io.BytesIO(data)
