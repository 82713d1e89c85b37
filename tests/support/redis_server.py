"""A Redis server of a test's own, without persistence: stopped (everything lost), killed,
paused and started again on its port (bus faults here and in tests/topology)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support.child_server import ChildServer, binary


class RedisServer(ChildServer):
    """`redis-server` without persistence on a free loopback port."""

    name = "redis"

    @classmethod
    def from_env(cls, directory: Path) -> RedisServer:
        return cls(binary("TEST_REDIS_SERVER_BIN", "redis-server", "redis-server"), directory)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                "no", "--dir", str(self.directory), "--daemonize", "no"]

    def stop(self) -> None:
        """`SHUTDOWN NOSAVE`: Redis exits and, without persistence, comes back empty."""
        if not self.running:
            return
        assert self.proc is not None
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
            sock.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
            try:
                sock.recv(100)  # the connection closes when Redis exits
            except OSError:
                pass
        self.proc.wait(10)

    async def restart(self) -> None:
        self.stop()
        await self.start()
