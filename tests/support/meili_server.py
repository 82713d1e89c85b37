"""A Meilisearch server of a test's own (TEST_MEILISEARCH_BIN, else the CI cache), for tests
that kill and restart it. Tests that only need a server use TEST_MEILISEARCH_URL."""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp

from tests.support.child_server import CACHE, ChildServer, binary

MEILISEARCH_VERSION = "1.50.0"


class MeiliServer(ChildServer):
    """One Meilisearch process on a loopback port; kill() and start() keep its port and data."""

    name = "meilisearch"

    def __init__(self, binary_path: str, directory: Path) -> None:
        super().__init__(binary_path, directory)
        self.key = secrets.token_hex(16)

    @classmethod
    def from_env(cls, directory: Path) -> MeiliServer:
        found = binary("TEST_MEILISEARCH_BIN", CACHE / f"meilisearch-{MEILISEARCH_VERSION}", "Meilisearch")
        return cls(found, directory)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "--db-path", str(self.directory / "db"), "--http-addr", f"127.0.0.1:{self.port}",
                "--master-key", self.key, "--no-analytics", "--env", "development"]

    async def ready(self) -> bool:
        """Healthy: `/health` says available (listening comes earlier)."""
        if not await super().ready():
            return False
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{self.url}/health") as resp:
                return resp.status == 200 and (await resp.json()).get("status") == "available"
        except aiohttp.ClientError:
            return False
