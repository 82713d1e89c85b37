"""Uploading files to the running app over HTTP, and waiting for them to be read."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.backends import Backend
from tests.support.client import Api, Response
from tests.support.env import require_env
from tests.support.wait import until

BOUNDARY = "gust-test-boundary-7e1f"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def form(name: str, data: bytes, *, field: str = "file", content_type: str = "text/plain") -> bytes:
    """A multipart/form-data body holding one file part (and nothing is trusted from `name`)."""
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\n"
            f"Content-Type: {content_type}\r\n\r\n").encode()
    return head + data + f"\r\n--{BOUNDARY}--\r\n".encode()


async def upload(api: Api, name: str, data: bytes) -> Response:
    return await api.request("POST", "/api/files", data=form(name, data), headers={"Content-Type": MULTIPART})


async def settled(api: Api, file_id: str, timeout: float = 90.0) -> dict[str, Any]:
    """The file's record once it is no longer `processing` (read by a worker process)."""
    seen: dict[str, Any] = {}

    async def done() -> bool:
        resp = await api.get(f"/api/files/{file_id}")
        assert resp.status == 200, resp.text
        seen.update(resp.json)
        return bool(resp.json["status"] != "processing")

    assert await until(done, timeout=timeout, interval=0.1), f"file {file_id} still processing"
    return seen


@asynccontextmanager
async def files_app(backend: Backend, data_dir: Path, **overrides: Any) -> AsyncIterator[RunningApp]:
    """The app on `backend`: SQLite (bytes in a directory, SQLite FTS5 + sqlite-vec passages) or
    MongoDB (FerretDB store, GridFS bytes, Meilisearch passages in indexes of this test only).
    The `backend` fixture drops the MongoDB database afterwards."""
    settings = backend.settings()
    if backend.is_mongodb:
        suffix = uuid.uuid4().hex[:12]
        settings |= {
            "meilisearch_host": require_env("TEST_MEILISEARCH_URL", "a Meilisearch server"),
            "meilisearch_api_key": require_env("TEST_MEILISEARCH_KEY", "the Meilisearch master key"),
            "meilisearch_index": f"gust_messages_{suffix}",
            "retrieval_meilisearch_index": f"gust_passages_{suffix}",
        }
    running = await start_app(make_settings(data_dir, **settings, **overrides))
    try:
        yield running
    finally:
        await running.stop()
