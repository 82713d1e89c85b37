"""Fixtures for research tests: the local site server on several loopback addresses."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator

import pytest

from gust.adapters.web.guard import IPAddress, SystemResolver
from tests.support.site_server import SiteServer


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


HAS_IPV6 = _ipv6_loopback()


@pytest.fixture
async def site() -> AsyncIterator[SiteServer]:
    """The site on 127.0.0.1, 127.0.0.2 (and ::1 when the machine has it), one port."""
    hosts = ("127.0.0.1", "127.0.0.2", *(("::1",) if HAS_IPV6 else ()))
    server = await SiteServer(hosts=hosts).start()
    yield server
    await server.stop()


class StaticResolver:
    """A resolver with fixed answers for some names (the system's for the rest); it counts
    lookups. Only name resolution is replaced: the guard checks whatever it answers."""

    def __init__(self, names: dict[str, list[str]], *, then: dict[str, list[str]] | None = None) -> None:
        self.names = names
        self.then = then or {}  # answers from the second lookup of a name on (DNS rebinding)
        self.calls: list[str] = []
        self.system = SystemResolver()

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        seen_before = host in self.calls
        self.calls.append(host)
        answers = self.then.get(host) if seen_before and host in self.then else self.names.get(host)
        if answers is None:
            return await self.system.resolve(host, port)
        return [ipaddress.ip_address(a) for a in answers]
