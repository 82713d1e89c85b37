"""Uploaded files: store the bytes, read them into passages, keep the record (issue 20).

`ingest` streams an upload into the file storage (size limit and quota enforced while it
arrives), learns its type from the bytes (415 for anything unsupported, nothing kept),
records it `processing` and returns. Reading it happens in the background, in an isolated
worker process (ports/isolation.py, target services/extraction.py): the passages are
stored and the file turns `ready`, or it turns `failed` with a code of
gust.domain.files.FILE_ERROR_CODES. Nothing a file does in the worker reaches the event
loop; a file the server stopped reading is read again by `recover()` at start-up.

Wiring (app.py), with `s` the Settings:

    storage = (GridFSFileStorage(s.mongodb_uri, s.mongodb_db_name, timeout_ms=s.mongodb_timeout_ms)
               if s.mongodb_uri else DirectoryFileStorage(s.files_dir))
    isolation = ProcessIsolation(memory_bytes=s.file_extract_memory_mb << 20,
                                 timeout=s.file_extract_timeout, max_concurrent=s.parse_max_concurrent)
    files = FileService(store, storage, isolation, FileLimits.from_settings(s))

then `await storage.start()`, `await files.recover()` once the store is up, and
`await files.close()` then `await storage.close()` at shutdown.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gust.domain.errors import GustError, NotFound, Overloaded, RateLimited, ValidationError
from gust.domain.files import (
    FILE_ERROR_CODES,
    Chunk,
    FileRecord,
    FileTooLarge,
    QuotaExceeded,
    UnsupportedFileType,
)
from gust.domain.ids import new_id, now
from gust.ports.file_storage import BlobTooLarge, FileStorage, read_all
from gust.ports.files_store import FilesStore
from gust.ports.isolation import Isolation
from gust.services.file_types import (
    HEAD_BYTES,
    TAIL_BYTES,
    needs_whole_file,
    refuse_polyglot,
    sniff,
    sniff_container,
)

if TYPE_CHECKING:
    from gust.config import Settings

log = logging.getLogger(__name__)

EXTRACT_TARGET = "gust.services.extraction:extract_file"
ReadyListener = Callable[[FileRecord, list[Chunk]], Awaitable[None]]

# Errors of the worker or the isolation port, as a failed file's code.
_ERROR_CODES = {
    "upload_too_complex": "file_too_complex",
    "upload_too_deep": "file_too_complex",
    "parse_timeout": "extract_timeout",
    "archive_corrupt": "file_corrupt",
    "archive_unsupported": "file_corrupt",
}


@dataclass(frozen=True, slots=True)
class FileLimits:
    max_bytes: int = 25 << 20  # one upload (FILE_MAX_BYTES)
    quota_bytes: int = 0  # all of one owner's files; 0: no quota (FILE_QUOTA_BYTES)
    max_unpacked_bytes: int = 64 << 20  # an Office package's XML, inflated
    max_text_chars: int = 10_000_000
    max_image_pixels: int = 50_000_000
    max_tokens: int = 500  # per passage
    min_tokens: int = 100
    overlap_tokens: int = 60
    busy_wait: float = 300.0  # how long a file waits for a free worker before it fails
    concurrency: int = 1  # files read at once by this process (each in its own worker)

    @classmethod
    def from_settings(cls, settings: Settings) -> FileLimits:
        """The limits the settings (FILE_*) give."""
        return cls(
            max_bytes=settings.file_max_bytes, quota_bytes=settings.file_quota_bytes,
            max_unpacked_bytes=settings.file_max_unpacked_bytes, max_text_chars=settings.file_max_text_chars,
            max_image_pixels=settings.file_max_image_pixels, max_tokens=settings.file_chunk_tokens,
            min_tokens=min(100, settings.file_chunk_tokens // 4),
            overlap_tokens=settings.file_chunk_overlap_tokens,
        )


class FileService:
    def __init__(
        self, store: FilesStore, storage: FileStorage, isolation: Isolation, limits: FileLimits
    ) -> None:
        self.store = store
        self.storage = storage
        self.isolation = isolation
        self.limits = limits
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(limits.concurrency)
        self._listeners: list[ReadyListener] = []

    def on_ready(self, listener: ReadyListener) -> None:
        """Call `listener(record, chunks)` when a file turns ready (indexing, embeddings)."""
        self._listeners.append(listener)

    # -- upload ------------------------------------------------------------------------
    async def ingest(
        self, owner_id: str, name: str, chunks: AsyncIterable[bytes], *, team_id: str | None = None
    ) -> FileRecord:
        """Store an upload and start reading it; the record comes back `processing`."""
        limit, quota_bound = await self._upload_limit(owner_id)
        file_id = new_id()
        head = bytearray()
        tail = bytearray()

        async def watched() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                if len(head) < HEAD_BYTES:
                    head.extend(chunk[: HEAD_BYTES - len(head)])
                tail.extend(chunk[-TAIL_BYTES:])
                del tail[:-TAIL_BYTES]
                yield chunk

        try:
            blob = await self.storage.put(owner_id, file_id, watched(), max_bytes=limit)
        except BlobTooLarge:
            if quota_bound:
                raise QuotaExceeded("the upload would take you past your storage quota",
                                    limit=self.limits.quota_bytes) from None
            raise FileTooLarge(f"files are limited to {limit} bytes", limit=limit) from None
        try:
            if blob.size == 0:
                raise ValidationError("the file is empty", code="file_empty")
            kind = sniff(bytes(head))
            refuse_polyglot(kind, bytes(head), bytes(tail), blob.size)
            if needs_whole_file(kind):
                data = await read_all(self.storage, owner_id, file_id, max_bytes=blob.size)
                kind = await asyncio.to_thread(sniff_container, data)
            record = FileRecord(
                id=file_id, owner_id=owner_id, team_id=team_id, name=clean_name(name), size=blob.size,
                content_type=kind.content_type, sha256=blob.sha256, status="processing", created_at=now(),
            )
            await self.store.create_file(record)
        except BaseException:
            await self.storage.delete(owner_id, file_id)
            raise
        log.info("file %s stored (%s, %d bytes); reading it", file_id, kind.name, blob.size)
        self._start(record, kind.name)
        return record

    async def _upload_limit(self, owner_id: str) -> tuple[int, bool]:
        """The most bytes this upload may have, and whether the quota (not the size limit) sets it."""
        if self.limits.quota_bytes <= 0:
            return self.limits.max_bytes, False
        remaining = self.limits.quota_bytes - await self.storage.usage(owner_id)
        if remaining <= 0:
            raise QuotaExceeded("your storage quota is used up; delete files to upload more",
                                limit=self.limits.quota_bytes)
        return min(self.limits.max_bytes, remaining), remaining < self.limits.max_bytes

    # -- reading -----------------------------------------------------------------------
    def _start(self, record: FileRecord, kind: str) -> None:
        task = asyncio.create_task(self._process(record, kind), name=f"file-{record.id}")
        self._tasks[record.id] = task
        task.add_done_callback(lambda _done: self._tasks.pop(record.id, None))

    async def _process(self, record: FileRecord, kind: str) -> None:
        try:
            async with self._slots:
                await self._read(record, kind)
        except asyncio.CancelledError:
            raise  # shutdown or delete: a file left `processing` is read again by recover()
        except Exception:
            log.exception("reading file %s failed outside the worker", record.id)

    async def _read(self, record: FileRecord, kind: str) -> None:
        try:
            data = await read_all(self.storage, record.owner_id, record.id, max_bytes=record.size)
            items = await self._extract(data, kind)
        except GustError as exc:
            code = _ERROR_CODES.get(exc.code, exc.code)
            if code not in FILE_ERROR_CODES:
                log.warning("file %s: unexpected error code %s (%s)", record.id, exc.code, exc.message)
                code = "extract_failed"
            if exc.code == "archive_unsupported" and "encrypted" in exc.message:
                code = "file_encrypted"
            log.info("file %s failed: %s", record.id, code)
            await self.store.finish_file(record.id, "failed", error_code=code, error_message=exc.message)
            return
        except RuntimeError:
            log.exception("the extraction worker crashed on file %s", record.id)
            await self.store.finish_file(record.id, "failed", error_code="extract_failed")
            return
        pages = items[0].get("pages") if items else None
        chunks = [
            Chunk(id=new_id(), file_id=record.id, owner_id=record.owner_id, ordinal=p["ordinal"],
                  text=p["text"], page=p["page"], section=p["section"])
            for p in (item["passage"] for item in items[1:])
        ]
        done = await self.store.finish_file(record.id, "ready", chunks=chunks, pages=pages)
        if done is None:
            return  # deleted while it was read
        log.info("file %s ready: %d passages", record.id, len(chunks))
        for listener in self._listeners:
            try:
                await listener(done, chunks)
            except Exception:
                log.exception("a listener of ready files failed on %s", record.id)

    async def _extract(self, data: bytes, kind: str) -> list[Any]:
        """The worker's items; waits (with backoff) while every worker is busy."""
        limits = self.limits
        params = {
            "kind": kind, "max_unpacked_bytes": limits.max_unpacked_bytes,
            "max_text_chars": limits.max_text_chars, "max_image_pixels": limits.max_image_pixels,
            "max_tokens": limits.max_tokens, "min_tokens": limits.min_tokens,
            "overlap_tokens": limits.overlap_tokens,
        }
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.busy_wait
        delay = 0.2
        while True:
            try:
                return await self.isolation.run(EXTRACT_TARGET, data, params)
            except (Overloaded, RateLimited):
                if loop.time() + delay > deadline:
                    raise GustError("no worker was free to read the file", code="extract_failed") from None
                await asyncio.sleep(delay)  # other uploads or imports hold every worker
                delay = min(delay * 2, 5.0)

    async def recover(self, *, limit: int = 1000) -> int:
        """Read again the files a previous run left `processing` (it stopped mid-read)."""
        pending = await self.store.files_with_status("processing", limit=limit)
        for record in pending:
            if record.id in self._tasks:
                continue
            try:
                kind = _kind_name(record.content_type)
            except UnsupportedFileType:
                await self.store.finish_file(record.id, "failed", error_code="extract_failed")
                continue
            self._start(record, kind)
        if pending:
            log.info("reading %d files left unfinished by the previous run", len(pending))
        return len(pending)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- reading records and bytes -----------------------------------------------------
    async def get(self, user_id: str, team_id: str | None, file_id: str) -> FileRecord:
        """A file its owner or the owner's team may see; NotFound for anyone else."""
        record = await self.store.get_file(file_id)
        if record is None or not (
            record.owner_id == user_id or (record.team_id is not None and record.team_id == team_id)
        ):
            raise NotFound("no such file", code="file_not_found")
        return record

    async def content(
        self, user_id: str, team_id: str | None, file_id: str
    ) -> tuple[FileRecord, AsyncIterator[bytes]]:
        """The record and a stream of the bytes, for the owner or the owner's team."""
        record = await self.get(user_id, team_id, file_id)
        return record, self.storage.open(record.owner_id, record.id)

    async def chunks(self, user_id: str, team_id: str | None, file_id: str) -> list[Chunk]:
        record = await self.get(user_id, team_id, file_id)
        found: list[Chunk] = []
        while batch := await self.store.list_chunks(record.id, after=found[-1].ordinal if found else -1):
            found.extend(batch)
        return found

    async def list_files(
        self, owner_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[FileRecord], str | None]:
        """The owner's files, newest first, and the cursor of the next page (None at the end)."""
        before = _decode_cursor(cursor) if cursor else None
        items = await self.store.list_files(owner_id, limit=limit + 1, before=before)
        more = len(items) > limit
        items = items[:limit]
        return items, (_encode_cursor(items[-1]) if more and items else None)

    async def delete(self, owner_id: str, file_id: str) -> None:
        """Remove a file (record, passages, bytes); only its owner may."""
        record = await self.store.get_file(file_id)
        if record is None or record.owner_id != owner_id:
            raise NotFound("no such file", code="file_not_found")
        task = self._tasks.get(file_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.delete_file(file_id)
        await self.storage.delete(owner_id, file_id)


def clean_name(name: str) -> str:
    """The name to show: its last path segment, without control characters, at most 255 chars."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    return cleaned.strip()[:255] or "file"


def _kind_name(content_type: str) -> str:
    from gust.services.file_types import KIND_OF_CONTENT_TYPE

    kind = KIND_OF_CONTENT_TYPE.get(content_type)
    if kind is None:
        raise UnsupportedFileType(f"unknown recorded type {content_type}")
    return kind.name


def _encode_cursor(record: FileRecord) -> str:
    return base64.urlsafe_b64encode(f"{record.created_at!r}|{record.id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, file_id = raw.partition("|")
        return float(created), file_id
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("invalid cursor", code="invalid_cursor") from None
