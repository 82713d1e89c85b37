"""The SSRF guard at connect time, for every aiohttp session that reaches a user-given URL.

`guarded_connector()` builds a TCPConnector whose resolver resolves each host once per
connection through the guard (every answer checked, a refused one refuses the host) and
whose socket factory checks the very address each socket connects to. aiohttp skips the
resolver for literal addresses; the socket factory does not, so redirects, literal hosts
and DNS rebinding all meet the same policy, and nothing unchecked is ever connected to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from gust.adapters.web.guard import (
    AddressPolicy,
    AddressResolver,
    IPAddress,
    SystemResolver,
    checked_resolve,
    parse_ip_host,
)
from gust.ports.web import FetchError

# How long an address that an allow-listed host name resolved to may be connected to.
VOUCH_SECONDS = 300.0


class GuardRefused(OSError):
    """The guard refused a host or an address; aiohttp wraps it in a ClientConnectorError."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(f"SSRF guard: {error.reason}")
        self.error = error


class _Vouched:
    """Addresses that allow-listed host names resolved to: the socket factory lets them through."""

    def __init__(self) -> None:
        self._until: dict[IPAddress, float] = {}

    def add(self, ip: IPAddress) -> None:
        if len(self._until) > 1024:
            now = time.monotonic()
            self._until = {a: t for a, t in self._until.items() if t > now}
        self._until[ip] = time.monotonic() + VOUCH_SECONDS

    def __contains__(self, ip: IPAddress) -> bool:
        until = self._until.get(ip)
        return until is not None and until > time.monotonic()


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver: one lookup per connection, every address checked by the policy."""

    def __init__(self, policy: AddressPolicy, resolver: AddressResolver, vouched: _Vouched) -> None:
        self.policy = policy
        self.resolver = resolver
        self._vouched = vouched

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await checked_resolve(host, port, self.policy, self.resolver)
        except FetchError as exc:
            raise GuardRefused(exc) from None
        if parse_ip_host(host) is None and self.policy.allowed.allows_name(host):
            for ip in addresses:
                self._vouched.add(ip)
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in addresses
        ]

    async def close(self) -> None:
        return None


def _socket_factory(policy: AddressPolicy, vouched: _Vouched) -> Any:
    def make_socket(addr_info: Any) -> socket.socket:
        family, type_, proto, _canon, sockaddr = addr_info
        ip = ipaddress.ip_address(sockaddr[0])
        if ip not in vouched:
            try:
                policy.check_address(ip)
            except FetchError as exc:
                raise GuardRefused(exc) from None
        return socket.socket(family=family, type=type_, proto=proto)

    return make_socket


def guarded_connector(
    policy: AddressPolicy, resolver: AddressResolver | None = None, **options: Any
) -> aiohttp.TCPConnector:
    """A TCPConnector that only ever connects to addresses the policy allows."""
    vouched = _Vouched()
    return aiohttp.TCPConnector(
        resolver=GuardedResolver(policy, resolver or SystemResolver(), vouched),
        use_dns_cache=False,  # a cached answer would skip the per-connection check
        socket_factory=_socket_factory(policy, vouched),
        **options,
    )


def refusal(exc: BaseException) -> FetchError | None:
    """The guard's refusal behind an aiohttp error, if that is what it is."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, GuardRefused):
            return current.error
        if isinstance(current, FetchError):
            return current
        if isinstance(current, aiohttp.ClientConnectorError):
            nested: BaseException | None = current.os_error
            if isinstance(nested, GuardRefused):
                return nested.error
        if isinstance(current, OSError) and str(current).startswith("Multiple exceptions: SSRF guard:"):
            return FetchError("blocked", "address not allowed")
        current = current.__cause__ or current.__context__
    return None


class OutboundGuard:
    """The guard as services see it (ports.web.UrlGuard): a URL checked when it is configured,
    and the connector every fetcher's session is built with."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: AddressResolver | None = None,
        *,
        resolve_timeout: float = 3.0,
    ) -> None:
        self.policy = policy
        self.resolver: AddressResolver = resolver or SystemResolver()
        self.resolve_timeout = resolve_timeout

    async def check_target(self, url: str) -> None:
        """Refuse (FetchError "blocked") a URL whose form, host or current addresses the
        policy refuses. A name that does not resolve now passes: connect time checks again."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError) as exc:
            raise FetchError("blocked", "invalid URL") from exc
        host, port = self.policy.check_url(parsed)
        try:
            async with asyncio.timeout(self.resolve_timeout):
                await checked_resolve(host, port, self.policy, self.resolver)
        except FetchError as exc:
            if exc.kind == "blocked":
                raise
        except TimeoutError:
            pass

    def connector(self, **options: Any) -> aiohttp.TCPConnector:
        return guarded_connector(self.policy, self.resolver, **options)

