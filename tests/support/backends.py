"""The store a test runs on: embedded SQLite, or MongoDB (FerretDB in CI) in a fresh database.

Tests marked `@pytest.mark.both_stores` (or a module's `pytestmark`) run once per store; the
plugin's `backend` fixture gives them a `Backend`, and the `app` and adapter fixtures build
on it. MongoDB databases are dropped with PyMongo straight from the URI, never through the
adapter's private client.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pymongo import AsyncMongoClient

from gust.adapters.store.mongo import MongoStore
from gust.adapters.store.sqlite import SQLiteStore
from gust.ports.store import Store

StoreName = Literal["sqlite", "mongodb"]
STORES: tuple[StoreName, ...] = ("sqlite", "mongodb")
MONGODB_WHAT = "a MongoDB wire-protocol server (FerretDB)"

Document = dict[str, Any]
StoreAdapter = SQLiteStore | MongoStore


@dataclass(frozen=True)
class Backend:
    """One store choice; `mongodb_uri`/`db_name` are set for MongoDB only."""

    name: StoreName
    mongodb_uri: str | None = None
    db_name: str | None = None

    @classmethod
    def sqlite(cls) -> Backend:
        return cls("sqlite")

    @classmethod
    def mongodb(cls, uri: str, prefix: str = "gust_test") -> Backend:
        return cls("mongodb", uri, f"{prefix}_{uuid.uuid4().hex[:12]}")

    @property
    def is_mongodb(self) -> bool:
        return self.name == "mongodb"

    def settings(self) -> dict[str, Any]:
        """Overrides for `make_settings` (nothing for SQLite: the data directory holds it)."""
        if self.mongodb_uri is None:
            return {}
        return {"mongodb_uri": self.mongodb_uri, "mongodb_db_name": self.db_name}

    def env(self) -> dict[str, str]:
        """The same choice as environment variables, for a `python -m gust` child process."""
        if self.mongodb_uri is None or self.db_name is None:
            return {}
        return {"MONGODB_URI": self.mongodb_uri, "MONGODB_DB_NAME": self.db_name}

    def store(self, directory: Path) -> StoreAdapter:
        """The store adapter itself (not started), for the contract tests."""
        if self.mongodb_uri is None or self.db_name is None:
            return SQLiteStore(directory / "store.db")
        return MongoStore(self.mongodb_uri, self.db_name)

    async def documents(self, collection: str) -> list[Document]:
        """Every raw document of a MongoDB collection, as stored."""
        assert self.mongodb_uri is not None and self.db_name is not None, "a MongoDB backend only"
        client: AsyncMongoClient[Document] = AsyncMongoClient(self.mongodb_uri)
        try:
            return [doc async for doc in client[self.db_name][collection].find({})]
        finally:
            await client.close()

    async def drop(self) -> None:
        if self.mongodb_uri is not None and self.db_name is not None:
            await drop_database(self.mongodb_uri, self.db_name)


def adapter(store: Store) -> StoreAdapter:
    """The app's store as the adapter it is, so a test can use it through any narrower port
    (accounts, search, shares...) with mypy checking that the adapter implements it."""
    assert isinstance(store, SQLiteStore | MongoStore), type(store)
    return store


async def drop_database(uri: str, db_name: str, options: Mapping[str, Any] | None = None) -> None:
    """Drop a test's MongoDB database with a client of its own."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(uri, **dict(options or {}))
    try:
        await client.drop_database(db_name)
    finally:
        await client.close()
