"""A real MCP server for the tools tests: the `mcp` SDK's MCPServer over streamable HTTP.

Run in a subprocess (`python -m tests.support.mcp_server PORT [NAME]`) so tests can kill,
stop (SIGSTOP: the port still accepts connections but nothing answers) and restart it.
Its tools: `add`, `echo`, `fail` (the tool raises: an error result), `hang` (never
returns), `big` (a long text) and `whoami` (the headers it was called with).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings

from tests.support.wait import until


def build(name: str) -> MCPServer:
    server = MCPServer(name, log_level="WARNING")

    @server.tool(description="Add two integers")
    def add(a: int, b: int) -> int:
        return a + b

    @server.tool(description="Repeat the text")
    def echo(text: str) -> str:
        return text

    @server.tool(description="Always fails")
    def fail(reason: str = "scripted failure") -> str:
        raise ValueError(reason)

    @server.tool(description="Never returns")
    async def hang() -> str:
        markers = os.environ.get("MCP_TEST_MARKERS")
        if markers:  # lets a test wait until a call is really running
            Path(markers, "hang-started").touch()
        await asyncio.Event().wait()
        return "unreachable"

    @server.tool(description="A long text")
    def big(chars: int) -> str:
        return "0123456789" * (chars // 10)

    @server.tool(description="The Authorization header of the request")
    def whoami(ctx: Context) -> str:
        request = ctx.request_context.request
        headers = getattr(request, "headers", None) or {}
        return str(headers.get("authorization", "-"))

    return server


def main() -> None:
    port = int(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else "testsrv"
    # The SDK's own DNS-rebinding protection, opened to the name the allow-list test uses.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*", "mcp.internal:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
    )
    build(name).run("streamable-http", host="127.0.0.1", port=port, transport_security=security)




class McpServerProcess:
    """The server above in a subprocess on a fixed loopback port: start, kill, pause
    (SIGSTOP: connections are accepted by the kernel, nothing answers), resume, restart."""

    def __init__(self, port: int, name: str = "testsrv", markers: Path | None = None) -> None:
        self.port = port
        self.name = name
        self.markers = markers  # the `hang` tool touches `hang-started` here
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> McpServerProcess:
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "backend"), str(root)])}
        if self.markers is not None:
            env["MCP_TEST_MARKERS"] = str(self.markers)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.mcp_server", str(self.port), self.name],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not await until(self._listening, timeout=30):
            self.kill()
            raise RuntimeError("the MCP server did not start listening")
        return self

    async def _listening(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the MCP server exited with {self.process.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        await writer.wait_closed()
        return True

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused process must run to die cleanly
            self.process.kill()
            self.process.wait(10)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    async def restart(self) -> None:
        self.kill()
        await self.start()


if __name__ == "__main__":
    main()
