"""A server binary run by a test as a child process it can kill, restart, pause and resume.

One way to start each server the tests own (tests/support/{ferretdb,redis_server,meili_server}.py
subclass `ChildServer`): a fixed free loopback port and data directory, so `kill()` then
`start()` is the same server coming back with its data, as a restarted production server would.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.env import IN_CI, free_port
from tests.support.wait import until

CACHE = Path.home() / ".cache" / "gust-ci"


def binary(env_name: str, default: Path | str, what: str) -> str:
    """The server binary to run (`env_name`, else `default`): a skip with the reason when it is
    missing outside CI, a failure in CI."""
    path = os.environ.get(env_name) or str(default)
    found = shutil.which(path) if os.sep not in path else (path if os.access(path, os.X_OK) else None)
    if found:
        return found
    reason = f"{what} binary not found at {path!r} (set {env_name}; .ci/run provides it)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


class ChildServer:
    """A child process serving on `port`, restartable with the same port and data directory."""

    name = "server"

    def __init__(self, binary_path: str, directory: Path) -> None:
        self.binary = binary_path
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def ready(self) -> bool:
        """Whether it answers (here: accepts connections); raises when the process died."""
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True

    def launch(self) -> None:
        """Start the process without waiting for it to answer."""
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        log = (self.directory / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - a test server binary and fixed arguments
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
        )
        log.close()

    async def start(self, timeout: float = 30) -> None:
        """Start (again) on the same port and data, and wait until it answers."""
        self.launch()
        if not await until(self.ready, timeout=timeout, interval=0.05):
            raise AssertionError(f"{self.name} did not answer on port {self.port}:\n{self.log()}")

    async def ensure_up(self) -> None:
        """Running and answering (a test that failed mid-fault may have left it down or paused)."""
        if self.running:
            self.resume()
            return
        await self.start()

    def kill(self) -> None:
        """SIGKILL: the server vanishes without a goodbye (connections reset, nothing flushed);
        its data stays in the directory."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGCONT)  # a paused process dies at once too
                self.proc.kill()
            self.proc.wait(10)

    def pause(self) -> None:
        """SIGSTOP: a hung server (connections stay open, nothing answers)."""
        assert self.proc is not None and self.running
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def log(self) -> str:
        path = self.directory / f"{self.name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""
