"""Which gunicorn worker holds a connection (from /proc), and raw requests on a chosen worker."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from tests.support.wait import until


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def owner_of_connection(server_port: int, client_port: int, pids: list[int]) -> int | None:
    """The process holding the server side of the TCP connection from `client_port`."""
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            local_port, remote_port = int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)
            if local_port == server_port and remote_port == client_port:
                inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


async def _owner(port: int, writer: asyncio.StreamWriter, workers: list[int]) -> int | None:
    """The worker that accepted this new connection (polled: the accept may come a bit later)."""
    client_port = writer.get_extra_info("sockname")[1]
    owners: list[int] = []

    def accepted() -> bool:
        owner = owner_of_connection(port, client_port, workers)
        owners[:] = [] if owner is None else [owner]
        return owner is not None

    await until(accepted, timeout=1.0, interval=0.01)
    return owners[0] if owners else None


async def get_health(port: int, workers: list[int]) -> int | None:
    """GET /health on a new connection: the worker that answered 200 (None if none did)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        owner = await _owner(port, writer, workers)
        writer.write(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return owner if head.startswith(b"HTTP/1.1 200 ") else None
    except (OSError, TimeoutError, asyncio.IncompleteReadError):
        return None
    finally:
        writer.close()


async def post_on_worker(port: int, worker: int, workers: list[int], path: str,
                         headers: dict[str, str], tries: int = 50) -> tuple[int, Any]:
    """POST (empty body) on a connection that `worker` accepted: (status, JSON body).

    New connections land on either worker; this one reconnects until the wanted one has it.
    """
    for _ in range(tries):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            if await _owner(port, writer, workers) != worker:
                continue
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            request = f"POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n{head}\r\n"
            writer.write(request.encode())
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), 30)  # HTTP/1.0: the server closes at the end
            status_line, _, rest = raw.partition(b"\r\n")
            _, _, body = rest.partition(b"\r\n\r\n")
            return int(status_line.split()[1]), json.loads(body) if body else None
        finally:
            writer.close()
    raise AssertionError(f"no connection landed on worker {worker} in {tries} tries")
