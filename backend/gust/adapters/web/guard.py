"""The SSRF guard: which URLs, ports and addresses a research fetch may reach."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass, field
from typing import Protocol

from yarl import URL

from gust.ports.web import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# Cloud instance metadata services: never reachable, whatever the policy says.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task credentials
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
    }
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")

_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


def parse_ip_host(host: str) -> IPAddress | None:
    """The address a URL host denotes literally, including the legacy IPv4 forms that
    inet_aton accepts (2130706433, 0x7f000001, 0177.0.0.1, 127.1); None for a name."""
    host = host.strip("[]").rstrip(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(host) or not host[0].isdigit():
        return None
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            if part[:2].lower() == "0x":
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = 0
    for n in head:
        value = value << 8 | n
    value = value << 8 * (4 - len(head)) | last
    return ipaddress.IPv4Address(value)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside a mapped, compatible, NAT64, 6to4 or Teredo IPv6 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64 or (ip in IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(ip: IPAddress) -> str | None:
    """Why a fetch must not connect to `ip`, or None when it is a public unicast address."""
    if ip in METADATA_ADDRESSES:
        return "cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return "private address"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = address_problem(embedded)
            if inner is not None:
                return inner
            if ip.ipv4_mapped is not None:
                return "IPv4-mapped address"
    if ip.is_multicast:
        return "multicast address"
    if (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in CGNAT)
        or (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local)
    ):
        return "private address"
    if ip.is_reserved or not ip.is_global:
        return "reserved address"
    return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """What the guard lets through.

    allow_private (RESEARCH_ALLOW_PRIVATE, for intranet deployments) lifts the address and
    port checks; the scheme and credential checks and the cloud-metadata block always hold.
    allowed_addresses lets exactly these otherwise refused addresses through (an intranet
    host named one by one, or a test's local site server)."""

    allow_private: bool = False
    allowed_ports: frozenset[int] = frozenset({80, 443})
    allowed_addresses: frozenset[IPAddress] = field(default_factory=frozenset)

    def check_url(self, url: URL) -> tuple[str, int]:
        """Refuse a URL by its form alone; return its (host, port)."""
        scheme = (url.scheme or "").lower()
        if scheme not in ALLOWED_SCHEMES:
            raise FetchError("blocked", f"scheme {scheme or 'missing'} not allowed")
        if url.raw_user is not None or url.raw_password is not None:
            raise FetchError("blocked", "credentials in URL")
        host = url.raw_host
        if not host:
            raise FetchError("blocked", "no host in URL")
        port = url.explicit_port or DEFAULT_PORTS[scheme]
        if not self.allow_private and port not in self.allowed_ports:
            raise FetchError("blocked", f"port {port} not allowed")
        return host, port

    def check_address(self, ip: IPAddress) -> None:
        """Refuse an address the fetch must not connect to."""
        if ip in self.allowed_addresses:
            return
        problem = address_problem(ip)
        if problem is None:
            return
        if self.allow_private and problem != "cloud metadata address":
            return
        raise FetchError("blocked", problem)


class AddressResolver(Protocol):
    """Turns a host name into addresses; the guard checks every one of them."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]: ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo on the loop's executor)."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError("dns", "host does not resolve") from exc
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _canon, sockaddr in infos:
            ip = ipaddress.ip_address(sockaddr[0])
            if ip not in addresses:
                addresses.append(ip)
        return addresses


async def checked_addresses(
    url: URL, policy: AddressPolicy, resolver: AddressResolver
) -> tuple[str, int, list[IPAddress]]:
    """Check a URL and resolve its host once; every address must pass the policy.

    Returns (host, port, addresses): the connection goes to these addresses only."""
    host, port = policy.check_url(url)
    literal = parse_ip_host(host)
    addresses = [literal] if literal is not None else await resolver.resolve(host, port)
    if not addresses:
        raise FetchError("dns", "host does not resolve")
    for ip in addresses:
        policy.check_address(ip)
    return host, port, addresses
