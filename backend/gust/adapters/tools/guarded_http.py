"""The SSRF guard for httpx2, the HTTP client the `mcp` SDK uses (aiohttp has connect.py).

`GuardedTransport` is httpx2's own transport with one change: its connection pool's
network backend resolves each host through the guard (every answer checked by the
policy; one refused address refuses the host) and then connects to the checked address
itself, never to the name. DNS rebinding: the name is resolved once per connection, by
the guard, and the socket goes to an address that passed; a second DNS answer is never
used, because the HTTP client below never resolves anything. The Host header and TLS
(SNI and certificate checks) still use the name. Literal addresses in any spelling meet
the same check (the guard parses decimal, octal, hex and IPv4-in-IPv6 forms), redirects
open new connections through the same backend, and Unix sockets are refused.
Environment proxies are ignored (`trust_env=False`): a proxy would connect for us.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable

import httpcore2
import httpx2

from gust.adapters.web.connect import GuardRefused
from gust.adapters.web.guard import AddressPolicy, AddressResolver, SystemResolver, checked_resolve
from gust.ports.web import FetchError

DEFAULT_RESOLVE_TIMEOUT = 10.0


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """httpcore2's network backend behind the guard (see the module docstring)."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: AddressResolver | None = None,
        inner: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
        self.resolver: AddressResolver = resolver or SystemResolver()
        self._inner = inner or httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout or DEFAULT_RESOLVE_TIMEOUT):
                addresses = await checked_resolve(host, port, self.policy, self.resolver)
        except FetchError as exc:
            # httpx2 turns httpcore2's ConnectError into its own; the refusal stays the cause.
            raise httpcore2.ConnectError(f"SSRF guard: {exc.reason}") from GuardRefused(exc)
        except TimeoutError:
            raise httpcore2.ConnectTimeout(f"resolving {host} timed out") from None
        failure: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore2.ConnectError(f"{host} has no address")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("SSRF guard: unix sockets are not allowed") from GuardRefused(
            FetchError("blocked", "unix sockets are not allowed")
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport whose every connection goes through GuardedNetworkBackend."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: AddressResolver | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limits: httpx2.Limits = httpx2.Limits(max_connections=20, max_keepalive_connections=5),  # noqa: B008
    ) -> None:
        super().__init__(trust_env=False)
        # The pool httpx2 builds when there is no proxy, with the guarded backend: httpx2
        # has no parameter for the network backend, so the pool is replaced whole.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context or httpx2.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(policy, resolver),
        )


def guard_refusal(exc: BaseException) -> FetchError | None:
    """The guard's refusal anywhere behind `exc` (causes, contexts, exception groups)."""
    for item in exception_tree(exc):
        if isinstance(item, GuardRefused):
            return item.error
        if isinstance(item, FetchError) and item.kind == "blocked":
            return item
    return None


def exception_tree(exc: BaseException) -> Iterable[BaseException]:
    """`exc`, what it wraps and what caused it, each once."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            stack.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
