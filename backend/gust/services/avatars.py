"""Avatar images: sniffed by content (PNG, JPEG, WebP), size-checked, decoded and
re-encoded as PNG so nothing of the upload but its pixels is ever served."""

from __future__ import annotations

import asyncio
import io

from PIL import Image, UnidentifiedImageError

from gust.domain.errors import PayloadTooLarge, ValidationError

MAX_BYTES = 1024 * 1024
MAX_PIXELS = 4096 * 4096  # decompression bombs are refused before decoding
OUTPUT_SIZE = 512

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
)


def sniff(data: bytes) -> str | None:
    """The image format named by the bytes themselves (never by a header or file name)."""
    for magic, fmt in _SIGNATURES:
        if data.startswith(magic):
            return fmt
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _reencode(data: bytes, fmt: str) -> bytes:
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            width, height = img.size
            if width * height > MAX_PIXELS or width < 1 or height < 1:
                raise ValidationError("image dimensions are too large", field="avatar")
            img.load()
            frame = img.convert("RGBA")
    # Pillow reports a malformed file as any of these (ValueError: e.g. a truncated IHDR chunk).
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise ValidationError("image could not be decoded", field="avatar") from None
    frame.thumbnail((OUTPUT_SIZE, OUTPUT_SIZE))
    out = io.BytesIO()
    frame.save(out, format="PNG", optimize=True)
    return out.getvalue()


async def process_avatar(data: bytes) -> tuple[bytes, str]:
    """Validated, re-encoded PNG bytes and their media type; 413/422 otherwise."""
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"avatar is larger than {MAX_BYTES} bytes", limit=MAX_BYTES)
    fmt = sniff(data)
    if fmt is None:
        raise ValidationError("avatar must be a PNG, JPEG or WebP image", field="avatar")
    png = await asyncio.to_thread(_reencode, data, fmt)
    return png, "image/png"
