"""Uploaded files and the passages cut from them (issue 20: files, extraction, retrieval).

A `FileRecord` is what the API shows about an upload; its bytes live behind the file
storage port (ports/file_storage.py), its passages (`Chunk`) in the files store
(ports/files_store.py). `status` moves `processing` → `ready` | `failed`; a failed file
keeps a stable `error_code` a client can act on (FILE_ERROR_CODES).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from gust.domain.errors import GustError, PayloadTooLarge

FileStatus = Literal["processing", "ready", "failed"]

# Why a file ended `failed`: what each code means to the person who uploaded it.
FILE_ERROR_CODES: dict[str, str] = {
    "file_encrypted": "the file is protected by a password",
    "file_corrupt": "the file is damaged or not what its first bytes claim",
    "file_too_complex": "reading the file needed more memory than allowed",
    "file_unsafe_xml": "the document declares XML entities (a DTD), which Office files never need",
    "file_text_too_large": "the file holds more text than one file may",
    "extract_timeout": "reading the file took longer than allowed",
    "extract_failed": "the file could not be read",
    "image_too_large": "the image has more pixels than allowed",
    "archive_too_large": "the document unpacks to more than allowed",
    "archive_too_many_members": "the document holds too many parts",
    "archive_ratio": "a part of the document inflates far more than any real document",
    "archive_nested": "the document holds an archive inside",
    "archive_unsafe_path": "the document holds an unsafe part name",
    "archive_timeout": "unpacking the document took longer than allowed",
    "interrupted": "the server stopped while reading the file; upload it again",
}


@dataclass(slots=True)
class FileRecord:
    id: str
    owner_id: str
    name: str
    size: int
    content_type: str
    sha256: str
    status: FileStatus
    created_at: float
    team_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    pages: int | None = None
    chunks: int | None = None

    def public(self) -> dict[str, Any]:
        """The API's view (`GET /api/files/{id}`)."""
        from gust.domain.models import iso

        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "size": self.size,
            "content_type": self.content_type,
            "sha256": self.sha256,
            "status": self.status,
            "pages": self.pages,
            "chunks": self.chunks,
            "created_at": iso(self.created_at),
        }
        if self.error_code:
            body["error"] = {"code": self.error_code, "message": self.error_message
                             or FILE_ERROR_CODES.get(self.error_code, self.error_code)}
        return body


@dataclass(slots=True)
class Chunk:
    """A passage of a file, the unit of retrieval and citation."""

    id: str
    file_id: str
    owner_id: str
    ordinal: int  # 0, 1, 2... in reading order within the file
    text: str
    page: int | None = None  # 1-based page (PDF) or slide (PPTX)
    section: str | None = None  # the heading, slide title or sheet the passage sits under


class UnsupportedFileType(GustError):
    """The content is none of the types Gust reads (415), whatever its name says."""

    status = 415
    code = "unsupported_file_type"


class FileTooLarge(PayloadTooLarge):
    code = "file_too_large"


class QuotaExceeded(PayloadTooLarge):
    """The upload would take the owner past their storage quota (413)."""

    code = "file_quota_exceeded"


class ExtractionFailed(GustError):
    """Raised inside the extraction worker: the file cannot be read; `code` is in FILE_ERROR_CODES."""

    status = 422
    code = "extract_failed"


BlockKind = Literal["heading", "paragraph", "row", "code"]


@dataclass(frozen=True, slots=True)
class Block:
    """A unit of a document's structure, as extraction finds it and chunking consumes it."""

    text: str
    kind: BlockKind = "paragraph"
    page: int | None = None
    section: str | None = None

