"""A Meilisearch server of a test's own (the binary named by TEST_MEILISEARCH_BIN), for tests
that stop and restart it. Tests that only need a server use TEST_MEILISEARCH_URL."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from pathlib import Path

import aiohttp

from tests.support.env import free_port, require_env
from tests.support.wait import until


class MeiliServer:
    """One Meilisearch process on a loopback port; kill() and start() keep its port and data."""

    def __init__(self, binary: str, data_dir: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.key = secrets.token_hex(16)
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def from_env(cls, data_dir: Path) -> MeiliServer:
        return cls(require_env("TEST_MEILISEARCH_BIN", "a Meilisearch server binary"), data_dir)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> MeiliServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "meili.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - a test server binary from the environment
            [self.binary, "--db-path", str(self.data_dir / "db"), "--http-addr", f"127.0.0.1:{self.port}",
             "--master-key", self.key, "--no-analytics", "--env", "development"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir,
        )
        log.close()
        if not await until(self.healthy, timeout=30, interval=0.1):
            raise RuntimeError(f"meilisearch did not become healthy; see {self.data_dir / 'meili.log'}")
        return self

    async def healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"meilisearch exited; see {self.data_dir / 'meili.log'}")
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{self.url}/health") as resp:
                return resp.status == 200 and (await resp.json()).get("status") == "available"
        except aiohttp.ClientError:
            return False

    async def kill(self) -> None:
        """SIGKILL: the server vanishes mid-whatever, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait, 10)
        self.proc = None
