"""Export a chat or all chats; import Gust exports and ChatGPT's conversations.json."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

import tornado.httputil
from pydantic import BaseModel, Field, RootModel
from tornado.iostream import StreamClosedError
from tornado.web import Finish

from gust.domain.errors import BadRequest, PayloadTooLarge
from gust.handlers.base import APIHandler
from gust.handlers.routing import Media, Op, route
from gust.handlers.schemas import Strict
from gust.ports.isolation import Upload
from gust.services.exports import ExportService, chat_document, chat_markdown, utf8

SEND_CHUNK = 256 * 1024


class ChatExportJson(RootModel[dict[str, Any]]):
    """The chat with every branch: format, title, settings and the message tree."""


class ChatExportMarkdown(RootModel[str]):
    """The current branch as Markdown."""


CHAT_EXPORT = Media(
    "The chat as JSON (format=json) or Markdown (format=md), as an attachment",
    {"application/json": ChatExportJson, "text/markdown": ChatExportMarkdown},
)


class ExportQuery(Strict):
    format: Literal["json", "md"] = "json"


class ImportedChatOut(BaseModel):
    title: str
    chat_id: str
    messages: int


class SkippedChatOut(BaseModel):
    title: str
    reason: str


class ImportReportOut(BaseModel):
    """What was imported, and what was skipped and why."""

    imported: list[ImportedChatOut] = Field(default_factory=list)
    skipped: list[SkippedChatOut] = Field(default_factory=list)


def _filename(title: str, ext: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", title).strip("-.")[:60] or "chat"
    return f"{stem}.{ext}"


class ChatExportHandler(APIHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op("A chat as Markdown (format=md) or as JSON with every branch (format=json)",
                  query=ExportQuery, responses={200: CHAT_EXPORT}, tags=("export",)),
    }

    async def get(self, chat_id: str) -> None:
        query = self.query_model(ExportQuery)
        chat, messages = await ExportService(self.chats).chat_export(self.user, chat_id)
        ext = "json" if query.format == "json" else "md"
        self.set_header("Content-Disposition", f'attachment; filename="{_filename(chat.title, ext)}"')
        self.set_header("Cache-Control", "no-store")
        if query.format == "md":
            self.set_header("Content-Type", "text/markdown; charset=utf-8")
            self.finish(utf8(chat_markdown(chat, messages)))
        else:
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.finish(utf8(json.dumps(chat_document(chat, messages), ensure_ascii=False, indent=1)))


class ExportAllHandler(APIHandler):
    api_key_methods = frozenset({"GET"})
    api = {
        "get": Op("All my chats as a ZIP (chats/<id>.json and .md, manifest.json), built whole "
                  "before it is sent",
                  responses={200: "application/zip"}, tags=("export",)),
    }

    async def get(self) -> None:
        # Built whole before the first byte: a failure is an error status, not a broken ZIP.
        archive, size = await ExportService(self.chats).build_zip(self.user)
        with archive:
            self.set_header("Content-Type", "application/zip")
            self.set_header("Content-Disposition", 'attachment; filename="gust-export.zip"')
            self.set_header("Cache-Control", "no-store")
            self.set_header("Content-Length", str(size))
            try:
                while chunk := archive.read(SEND_CHUNK):
                    self.write(chunk)
                    await self.flush()
            except StreamClosedError:
                raise Finish() from None
        self.finish()


IMPORT_BODY: dict[str, dict[str, Any]] = {
    "multipart/form-data": {"type": "object", "required": ["file"],
                            "properties": {"file": {"type": "string", "format": "binary"}}},
    "application/json": {"description": "A chat export, or ChatGPT's conversations.json"},
    "application/zip": {"type": "string", "format": "binary", "description": "The ZIP of GET /api/export"},
}


class ImportHandler(APIHandler):
    api_key_methods = frozenset({"POST"})
    api = {
        "post": Op("Import a Gust export (chat JSON or the ZIP) or ChatGPT's conversations.json, "
                   "as the raw body or a multipart field `file`",
                   responses={200: ImportReportOut, 413: None}, tags=("export",), body_media=IMPORT_BODY),
    }

    @property
    def body_limit(self) -> int:
        return self.gust_settings.import_max_bytes

    async def prepare(self) -> None:
        self._upload = bytearray()
        await super().prepare()

    def data_received(self, chunk: bytes) -> None:
        # One growing buffer, not chunks joined at the end: a 50 MB upload is held once.
        self._body_size += len(chunk)
        if self._body_size <= self.body_limit:
            self._upload += chunk

    def _file(self) -> Upload:
        if self._body_size > self.body_limit:
            raise PayloadTooLarge(f"request body is larger than {self.body_limit} bytes")
        body = self._upload if self._body_size else self.request.body
        content_type = self.request.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            return body
        args: dict[str, list[bytes]] = {}
        files: dict[str, list[tornado.httputil.HTTPFile]] = {}
        try:
            tornado.httputil.parse_body_arguments(content_type, bytes(body), args, files)
        except tornado.httputil.HTTPInputError as exc:  # every malformed multipart body: no boundary...
            raise BadRequest(f"the multipart body is malformed: {exc}", code="invalid_multipart") from None
        if not files.get("file"):
            raise BadRequest("the multipart body has no field named file", code="invalid_import_file")
        return files["file"][0].body

    async def post(self) -> None:
        report = await self.services.imports.import_file(self.user, self._file())
        self.write_json({"imported": report.imported, "skipped": report.skipped})


default_handlers = [
    route("/api/chats/{chat_id}/export", ChatExportHandler),
    route("/api/export", ExportAllHandler),
    route("/api/import", ImportHandler),
]
