"""A FerretDB process of a test's own, to kill, restart, pause and resume (store outages).

The binary comes from TEST_FERRETDB_BIN (.ci/run builds it and exports the path): skipped
with a reason outside CI when unset, a failure in CI.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

from tests.support.env import free_port, require_env


class FerretDB:
    """One FerretDB on a fixed port and data directory: `kill()` then `start()` is the same
    server coming back with its data; `pause()`/`resume()` make it hang (SIGSTOP/SIGCONT)."""

    def __init__(self, binary: str, directory: Path) -> None:
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def launch(self) -> None:
        """Start the process without waiting for its port."""
        log = (self.directory / "ferretdb.log").open("ab")
        self.proc = subprocess.Popen(
            [self.binary, "--handler=sqlite", f"--sqlite-url=file:{self.directory}/",
             f"--listen-addr=127.0.0.1:{self.port}", f"--state-dir={self.directory}",
             "--debug-addr=-", "--telemetry=disable", "--log-level=error"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()

    async def start(self) -> None:
        self.launch()
        await self.wait_listening()

    async def wait_listening(self, timeout: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if loop.time() > deadline:
                    raise AssertionError(f"FerretDB did not listen on {self.port}") from None
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return

    def kill(self) -> None:
        """SIGKILL: the store is gone (connections reset), its data stays in the directory."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the store hangs (connections open, nothing answers)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


def ferretdb_binary() -> str:
    binary = require_env("TEST_FERRETDB_BIN", "a FerretDB binary to start, kill and pause")
    if not os.access(binary, os.X_OK):
        raise AssertionError(f"TEST_FERRETDB_BIN={binary} is not an executable")
    return binary
