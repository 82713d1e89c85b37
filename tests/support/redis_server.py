"""A private Redis server for fault tests: stopped (nothing saved) and started again on its port."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tests.support.env import free_port, require_env


class RedisServer:
    """`redis-server` without persistence on a free loopback port; `restart()` loses everything."""

    def __init__(self, directory: Path) -> None:
        require_env("TEST_REDIS_URL", "a Redis server")  # where Redis exists, redis-server does too
        binary = shutil.which("redis-server")
        if binary is None:
            raise AssertionError("TEST_REDIS_URL is set but redis-server is not on PATH")
        self.binary = binary
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "yes",
            "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            "--pidfile", str(self.directory / "redis.pid"), "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        subprocess.run(args, check=True)  # noqa: S603 - a fixed local binary and arguments
        client = _client(self.port)
        try:
            for _ in range(200):
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    time.sleep(0.02)  # polling for start-up
            raise AssertionError(f"redis-server did not start on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        """SHUTDOWN NOSAVE: the server exits and every key is gone."""
        client = _client(self.port)
        try:
            client.shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # already down, or the server closed the connection as it exited
        finally:
            client.close()
        for _ in range(200):
            if not self._listening():
                return
            time.sleep(0.02)  # polling for the exit
        raise AssertionError(f"redis-server on port {self.port} did not stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def _listening(self) -> bool:
        client = _client(self.port)
        try:
            client.ping()
            return True
        except redis.ConnectionError:
            return False
        finally:
            client.close()


def _client(port: int) -> redis.Redis:
    """A client that fails at once (the default one retries with backoff for seconds)."""
    return redis.Redis(port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
