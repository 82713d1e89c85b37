"""MongoStore starts while MongoDB is unreachable, and creates its indexes once it answers."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
from pymongo import AsyncMongoClient

from gust.adapters.store.mongo import MongoStore
from gust.domain.errors import StoreUnavailable
from tests.support.backends import Document, drop_database
from tests.support.env import free_port, require_env
from tests.support.wait import until


async def index_names(uri: str, db_name: str, collection: str) -> list[str]:
    """The collection's index names, read with a client of the test's own."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(uri)
    try:
        return [ix["name"] async for ix in await client[db_name][collection].list_indexes()]
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def tcp_proxy(listen_port: int, target_host: str, target_port: int) -> AsyncIterator[None]:
    """Forward 127.0.0.1:listen_port to the target: "the database came back"."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    tasks: set[asyncio.Task[None]] = set()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(target_host, target_port)
        for task in (asyncio.create_task(pipe(client_r, server_w)),
                     asyncio.create_task(pipe(server_r, client_w))):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(handle, "127.0.0.1", listen_port)
    try:
        yield
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_start_tolerates_an_unreachable_server_and_close_is_prompt() -> None:
    port = free_port()  # nothing listens there
    store = MongoStore(f"mongodb://127.0.0.1:{port}/", "gust_unreachable", start_timeout=0.5,
                       ping_timeout=0.5)
    started = time.monotonic()
    await store.start()
    assert time.monotonic() - started < 5
    assert store.indexes_ready is False
    with pytest.raises(StoreUnavailable) as raised:
        await store.ping()
    assert "127.0.0.1" in raised.value.reason  # for the logs and /health/ready, not for clients
    closing = time.monotonic()
    await store.close()  # cancels the background index task
    assert time.monotonic() - closing < 5
    assert store._index_task is None


async def test_indexes_are_created_once_the_server_answers() -> None:
    uri = require_env("TEST_MONGODB_URI", "a MongoDB wire-protocol server (FerretDB)")
    target = urlsplit(uri)
    port = free_port()
    db_name = f"gust_late_{uuid.uuid4().hex[:10]}"
    store = MongoStore(f"mongodb://127.0.0.1:{port}/?directConnection=true", db_name,
                       start_timeout=0.5, ping_timeout=1.0, index_retry_max=1.0)
    await store.start()
    try:
        assert store.indexes_ready is False
        async with tcp_proxy(port, target.hostname or "127.0.0.1", target.port or 27017):
            ready = await until(lambda: store.indexes_ready, timeout=30, interval=0.1)
            assert ready, "indexes were not created after the server came back"
            await store.ping()
            assert "email_unique" in await index_names(uri, db_name, "users")
    finally:
        await store.close()
        await drop_database(uri, db_name)
