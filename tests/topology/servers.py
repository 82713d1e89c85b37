"""Redis, FerretDB and Meilisearch run by the topology suite, so its tests can kill and restart them.

Each server is a child process on a fixed free port with its data in a temporary directory;
`kill()` / `start()` (and `pause()` / `resume()` for a hung server) keep the port and data,
as a restarted production server would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.env import IN_CI, free_port

CACHE = Path.home() / ".cache" / "gust-ci"
MEILI_KEY = "topology-master-key-0123456789abcdef"


def binary(env_name: str, default: Path | str, what: str) -> str:
    """The server binary to run; a skip with the reason when missing outside CI, a failure in CI."""
    path = os.environ.get(env_name) or str(default)
    found = shutil.which(path) if os.sep not in path else (path if os.access(path, os.X_OK) else None)
    if found:
        return found
    reason = f"{what} binary not found at {path!r} (set {env_name}; .ci/run provides it)"
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class ServerUnderTest:
    """A child process serving on `port`, restartable with the same port and data directory."""

    name = "server"

    def __init__(self, bin_path: str, workdir: Path) -> None:
        self.bin = bin_path
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30) -> None:
        """Start (again) on the same port and data, and wait until it accepts connections."""
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        log = (self.dir / f"{self.name}.log").open("ab")
        self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.dir)
        log.close()
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not listen on {self.port}:\n{self.log()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: the server vanishes without a goodbye (connections reset, nothing flushed)."""
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

    def ensure_up(self) -> None:
        """Running and answering (a test that failed mid-fault may have left it down or paused)."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)
            return
        self.start()

    def log(self) -> str:
        path = self.dir / f"{self.name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


class RedisServer(ServerUnderTest):
    name = "redis"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [self.bin, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                "no", "--dir", str(self.dir), "--daemonize", "no"]

    def shutdown_nosave(self) -> None:
        """`SHUTDOWN NOSAVE`: Redis exits and, without persistence, comes back empty."""
        assert self.proc is not None
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
            try:
                sock.recv(100)  # the connection closes when Redis exits
            except OSError:
                pass
        self.proc.wait(10)


class FerretServer(ServerUnderTest):
    """FerretDB with its SQLite handler: the MongoDB wire protocol, data kept across restarts."""

    name = "ferretdb"

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        return [self.bin, "--handler=sqlite", f"--sqlite-url=file:{self.dir}/",
                f"--listen-addr=127.0.0.1:{self.port}", f"--state-dir={self.dir}",
                "--debug-addr=-", "--telemetry=disable", "--log-level=error"]


class MeiliServer(ServerUnderTest):
    name = "meilisearch"
    key = MEILI_KEY

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [self.bin, "--db-path", str(self.dir / "db"), "--http-addr", f"127.0.0.1:{self.port}",
                "--master-key", self.key, "--no-analytics", "--env", "development"]


def make_servers(root: Path) -> tuple[RedisServer, FerretServer, MeiliServer]:
    """The three servers, not started; skips (or fails in CI) when a binary is missing."""
    redis_bin = binary("TEST_REDIS_SERVER_BIN", "redis-server", "redis-server")
    ferret_bin = binary("TEST_FERRETDB_BIN", CACHE / "ferretdb-v1.24.2", "FerretDB")
    meili_bin = binary("TEST_MEILISEARCH_BIN", CACHE / "meilisearch-1.50.0", "Meilisearch")
    return RedisServer(redis_bin, root / "redis"), FerretServer(ferret_bin, root / "ferret"), \
        MeiliServer(meili_bin, root / "meili")
