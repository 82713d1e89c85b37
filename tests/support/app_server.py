"""Run the real Gust application on an ephemeral loopback port, in-process or as a process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import tornado.httpserver
import tornado.netutil

from gust.app import GustApplication, make_app
from gust.config import Settings
from gust.http_server import close_connections, make_http_server
from gust.services.registry import Services
from tests.support.client import Api
from tests.support.openapi_check import OpenAPIChecker

ROOT = Path(__file__).resolve().parents[2]


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test: no .env file, fast bcrypt, a fixed secret, embedded defaults."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "bcrypt_rounds": 4,
        "auth_secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "port": 0,
        "host": "127.0.0.1",
        "local_model": False,
        # Generated titles change chats in the background; tests/models/test_titles.py opts in.
        "generate_titles": False,
        "shutdown_timeout": 2.0,
        # Tests register many accounts from one address: open registration, no abuse limits
        # (tests/api/test_auth_*.py set these back to check them).
        "registration": "open",
        "rate_limit_login_per_minute": 0,
        "rate_limit_messages_per_minute": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class RunningApp:
    url: str
    app: GustApplication
    server: tornado.httpserver.HTTPServer
    settings: Settings

    @property
    def services(self) -> Services:
        assert self.app.services is not None
        return self.app.services

    async def sign_up(self, http: aiohttp.ClientSession, email: str) -> Api:
        """A new account's signed-in client, every exchange checked against the OpenAPI document."""
        return await Api(self.url, http, OpenAPIChecker(self.app.openapi)).register_and_login(email)

    async def stop(self) -> None:
        self.server.stop()
        await self.app.shutdown()
        await close_connections(self.server, self.app.close_budget.remaining())


async def start_app(settings: Settings) -> RunningApp:
    """The application `python -m gust serve` runs, its runtime built by the same builder
    (gust/runtime.py through GustApplication.start_services), listening on a free port."""
    app = make_app(settings)
    await app.start_services()
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = make_http_server(app, settings)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    return RunningApp(f"http://127.0.0.1:{port}", app, server, settings)


def subprocess_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUST_", "MONGODB", "REDIS"))}
    env["PYTHONPATH"] = str(ROOT / "backend")
    env.update(extra)
    return env


class ServerProcess:
    """`python -m gust serve` (or any command) in a child process, for signal tests."""

    def __init__(self, args: list[str], env: Mapping[str, str], port: int, cwd: Path | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = Path(env.get("DATA_DIR", "/tmp")) / f"server-{port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            args, env=subprocess_env(env), cwd=cwd or ROOT, stdout=self._log, stderr=subprocess.STDOUT
        )

    @classmethod
    def gust(cls, env: Mapping[str, str], port: int) -> ServerProcess:
        full = {"PORT": str(port), "HOST": "127.0.0.1", "BCRYPT_ROUNDS": "4", **env}
        return cls([sys.executable, "-m", "gust", "serve"], full, port)

    async def wait_ready(self, timeout: float = 30) -> None:
        import aiohttp

        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log()}")
                try:
                    async with session.get(self.url + "/health") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"server did not become ready:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    async def wait_exit(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self.proc.poll() is None:
            self.proc.kill()
            raise AssertionError(f"server did not exit in {timeout}s:\n{self.log()}")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._log.close()
