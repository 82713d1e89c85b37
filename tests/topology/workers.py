"""Which gunicorn worker holds a connection (from /proc), and raw requests on a chosen worker."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any


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


async def post_on_worker(port: int, worker: int, workers: list[int], path: str,
                         headers: dict[str, str], tries: int = 50) -> tuple[int, Any]:
    """POST (empty body) on a connection that `worker` accepted: (status, JSON body).

    New connections land on either worker; this one reconnects until the wanted one has it.
    """
    for _ in range(tries):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            client_port = writer.get_extra_info("sockname")[1]
            owner = None
            for _ in range(50):  # the accept may not have happened yet
                owner = owner_of_connection(port, client_port, workers)
                if owner is not None:
                    break
                await asyncio.sleep(0.01)
            if owner != worker:
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
