"""Uploaded files: upload (streamed), list, read, download and delete (issue 20).

`POST /api/files` streams the multipart field `file` straight into the file storage: the
body is parsed as it arrives (handlers/multipart.py) and each piece goes to
`FileService.ingest` through a small bounded queue, so the request is never held whole and a
slow storage slows the client down (Tornado awaits `data_received`). The size limit is
applied by the storage while the bytes arrive; an upload refused half-way leaves nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, Field
from tornado.iostream import StreamClosedError
from tornado.web import Finish

from gust.domain.errors import GustError
from gust.domain.files import FileRecord
from gust.domain.models import User
from gust.handlers.base import APIHandler
from gust.handlers.multipart import (
    MultipartError,
    PartData,
    PartEnd,
    PartStart,
    StreamingMultipart,
    boundary_of,
)
from gust.handlers.routing import Op, route
from gust.handlers.schemas import Strict
from gust.services.files import FileService

MULTIPART_OVERHEAD = 64 * 1024  # boundaries and part headers around the file's bytes
QUEUE_PIECES = 8  # body pieces waiting for the storage at most (backpressure beyond)
# Types a browser could run or render as a page even when told to download: sent as bytes.
_ACTIVE_TYPES = re.compile(r"html|xml|svg|javascript|ecmascript", re.IGNORECASE)

UPLOAD_BODY: dict[str, dict[str, Any]] = {
    "multipart/form-data": {"type": "object", "required": ["file"],
                            "properties": {"file": {"type": "string", "format": "binary"}}},
}


class FileErrorOut(BaseModel):
    code: str
    message: str


class FileOut(BaseModel):
    """An uploaded file: `processing` until read, then `ready` (passages indexed) or `failed`."""

    id: str
    name: str
    size: int
    content_type: str = Field(description="Sniffed from the content, never taken from the name")
    sha256: str
    status: str = Field(description="processing, ready or failed")
    pages: int | None = None
    chunks: int | None = None
    created_at: str
    error: FileErrorOut | None = None


class FileListOut(BaseModel):
    """My files, newest first."""

    items: list[FileOut]
    next_cursor: str | None


class FileListQuery(Strict):
    limit: int = Field(50, ge=1, le=200)
    cursor: str | None = Field(None, max_length=200, description="next_cursor of the previous page")


class UploadStream:
    """One upload in flight: the multipart parser feeding FileService.ingest through a queue."""

    def __init__(self, files: FileService, user: User, boundary: bytes) -> None:
        self.files = files
        self.user = user
        self.parser = StreamingMultipart(boundary)
        self.queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=QUEUE_PIECES)
        self.task: asyncio.Task[FileRecord] | None = None
        self.in_file = False
        self.error: GustError | None = None

    async def feed(self, chunk: bytes) -> None:
        if self.error is not None:
            return  # the rest of a refused body is read and dropped
        try:
            events = self.parser.feed(chunk)
        except MultipartError as exc:
            self.error = exc
            await self._put(exc)
            return
        for event in events:
            if isinstance(event, PartStart) and event.name == "file" and self.task is None:
                self.in_file = True
                self.task = asyncio.create_task(
                    self.files.ingest(self.user.id, event.filename or "file", self._pieces()),
                    name="file-upload",
                )
                self.task.add_done_callback(lambda _task: self._drain())
            elif self.in_file and isinstance(event, PartData):
                await self._put(event.data)
            elif self.in_file and isinstance(event, PartEnd):
                self.in_file = False
                await self._put(None)

    async def _put(self, item: bytes | BaseException | None) -> None:
        if self.task is not None and not self.task.done():
            await self.queue.put(item)  # waits while the storage is behind

    def _drain(self) -> None:
        """The ingest ended (done or refused): free any piece a blocked `_put` waits behind."""
        while not self.queue.empty():
            self.queue.get_nowait()

    async def _pieces(self) -> AsyncIterator[bytes]:
        while True:
            item = await self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def result(self) -> FileRecord:
        """The stored file once the whole body arrived; the body's error otherwise."""
        if self.error is None:
            try:
                self.parser.finish()
            except MultipartError as exc:
                self.error = exc
                await self._put(exc)
        if self.error is not None:
            if self.task is not None:
                with contextlib.suppress(Exception):
                    record = await self.task
                    await self.files.delete(self.user.id, record.id)  # the body was not whole
            raise self.error
        if self.task is None:
            raise MultipartError("the multipart body has no field named file", code="file_missing")
        return await self.task

    def abort(self) -> None:
        """The client went away mid-upload: stop storing (the storage removes what it wrote)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()


class FilesHandler(APIHandler):
    # Keys chat, and sending a file with a message starts with its upload; the files are the
    # key owner's own, like the chats a key may list and create.
    api_key_methods = frozenset({"GET", "POST"})
    api = {
        "get": Op("My files, newest first", query=FileListQuery, responses={200: FileListOut},
                  tags=("files",)),
        "post": Op("Upload a file (multipart field `file`), streamed to storage; it comes back "
                   "`processing`, then turns `ready` or `failed` (GET /api/files/{file_id})",
                   responses={201: FileOut, 400: None, 413: None, 415: None}, tags=("files",),
                   body_media=UPLOAD_BODY),
    }
    _upload: UploadStream | None = None

    @property
    def body_limit(self) -> int:
        if self.request.method == "POST":
            return self.gust_settings.file_max_bytes + MULTIPART_OVERHEAD
        return super().body_limit

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method == "POST":
            boundary = boundary_of(self.request.headers.get("Content-Type", ""))
            self._upload = UploadStream(self.services.files, self.user, boundary)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        if self._upload is None:
            return super().data_received(chunk)
        return self._upload.feed(chunk)

    def on_connection_close(self) -> None:
        if self._upload is not None:
            self._upload.abort()
        super().on_connection_close()

    async def get(self) -> None:
        query = self.query_model(FileListQuery)
        items, cursor = await self.services.files.list_files(self.user.id, limit=query.limit,
                                                             cursor=query.cursor)
        self.write_json({"items": [item.public() for item in items], "next_cursor": cursor})

    async def post(self) -> None:
        assert self._upload is not None  # noqa: S101 - set by prepare() for every POST
        record = await self._upload.result()
        self.set_header("Location", f"/api/files/{record.id}")
        self.write_json(record.public(), status=201)


class FileHandler(APIHandler):
    api_key_methods = frozenset({"GET", "DELETE"})
    api = {
        "get": Op("A file: its status, and its error when reading it failed",
                  responses={200: FileOut}, tags=("files",)),
        "delete": Op("Delete a file: its bytes, passages and search entries",
                     responses={204: None}, tags=("files",)),
    }

    async def get(self, file_id: str) -> None:
        record = await self.services.files.get(self.user.id, self.user.team_id, file_id)
        self.write_json(record.public())

    async def delete(self, file_id: str) -> None:
        await self.services.knowledge.delete_file(self.user, file_id)
        self.set_status(204)
        self.finish()


class FileContentHandler(APIHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op("The file's bytes, as an attachment", responses={200: "*/*"}, tags=("files",)),
    }

    async def get(self, file_id: str) -> None:
        record, stream = await self.services.files.content(self.user.id, self.user.team_id, file_id)
        media = record.content_type
        self.set_header("Content-Type", "application/octet-stream" if _ACTIVE_TYPES.search(media) else media)
        self.set_header("Content-Disposition", attachment(record.name))
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "private, no-store")
        self.set_header("Content-Length", str(record.size))
        try:
            async for piece in stream:
                self.write(piece)
                await self.flush()
        except StreamClosedError:
            raise Finish() from None
        self.finish()


def attachment(name: str) -> str:
    """Content-Disposition for a download: an ASCII fallback and the UTF-8 name (RFC 6266)."""
    fallback = re.sub(r"[^A-Za-z0-9._ -]+", "_", name).strip() or "file"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


default_handlers = [
    route("/api/files", FilesHandler),
    route("/api/files/{file_id}", FileHandler),
    route("/api/files/{file_id}/content", FileContentHandler),
]
