"""The SSRF guard: which URLs, ports and addresses a server-side fetch may reach.

One policy for every fetch a user can point somewhere (research pages, agent webhooks,
later MCP servers and file URLs): checked on the URL when it is configured or requested,
and on every address at connect time (adapters/web/connect.py), so DNS rebinding and
redirects meet the same rules. SSRF_ALLOWED_HOSTS opens named private hosts to all of them.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from yarl import URL

from gust.ports.web import FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}

# Cloud instance metadata and host services: never reachable, whatever the policy says
# (only an exact entry of SSRF_ALLOWED_HOSTS lets one through, never a range).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, DigitalOcean...
        ipaddress.ip_address("fd00:ec2::254"),  # AWS over IPv6
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task credentials
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud
        ipaddress.ip_address("168.63.129.16"),  # Azure host service (wire server, DNS, health)
    }
)
# Names that mean this machine or a metadata service whatever DNS says.
BLOCKED_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "metadata.google.internal"}
)
CGNAT = ipaddress.ip_network("100.64.0.0/10")
# Ranges Python's ipaddress counts as global that no fetch has business reaching.
EXTRA_BLOCKED = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("192.88.99.0/24"),  # 6to4 relay anycast (deprecated)
    ipaddress.ip_network("3fff::/20"),  # documentation (RFC 9637)
    ipaddress.ip_network("5f00::/16"),  # SRv6 SIDs
)
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")

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
    """The IPv4 address inside an IPv6 one: mapped, translated, compatible, NAT64 (well-known
    and local-use), 6to4, Teredo (the de-obfuscated client) or an ISATAP interface id."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in NAT64 or ip in NAT64_LOCAL or ip in IPV4_TRANSLATED:
        return low32
    if ip in IPV4_COMPATIBLE and int(ip) > 1:
        return low32
    if (int(ip) >> 32) & 0xFDFFFFFF == 0x00005EFE:  # ISATAP: ::0:5efe:a.b.c.d or ::200:5efe:...
        return low32
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
    if ip.is_reserved or not ip.is_global or any(ip in net for net in EXTRA_BLOCKED):
        return "reserved address"
    return None


def normalise_host(host: str) -> str:
    """A URL host as the guard compares it: lower case, no brackets, no trailing dots, IDNA
    (full-width digits and dots fold to ASCII, as the URL parser and the resolver do)."""
    host = host.strip().strip("[]").rstrip(".").lower()
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


_NAME_CHARS = re.compile(r"[a-z0-9_.-]+")


def name_problem(host: str, *, local_allowed: bool = False) -> str | None:
    """Why a host name (not an address) must be refused before any DNS lookup: anything
    but letters, digits, `-`, `_` and dots (percent-escapes, colons of a malformed IPv6
    literal: a resolver may read them its own way), or localhost and its kin."""
    name = normalise_host(host)
    if not _NAME_CHARS.fullmatch(name):
        return "invalid host"
    if not local_allowed and (name in BLOCKED_NAMES or name.endswith(".localhost")):
        return "private address"
    return None


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class AllowList:
    """SSRF_ALLOWED_HOSTS: host names (`n8n.internal`, `*.corp.example` for subdomains),
    addresses and CIDR ranges that every fetcher may reach although they are private."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # from `*.corp.example`: ".corp.example"
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: str | Iterable[str]) -> AllowList:
        """Parse comma-separated entries; raises ValueError naming a bad one."""
        if isinstance(entries, str):
            entries = entries.split(",")
        names: set[str] = set()
        suffixes: list[str] = []
        networks: list[IPNetwork] = []
        for raw in entries:
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            literal = parse_ip_host(entry)
            if literal is not None:
                networks.append(ipaddress.ip_network(literal))
                continue
            name = normalise_host(entry)
            if name.startswith("*."):
                suffixes.append(name[1:])
            elif name and _HOST_NAME.fullmatch(name):
                names.add(name)
            else:
                raise ValueError(f"not a host name, address or CIDR range: {entry!r}")
        return cls(frozenset(names), tuple(suffixes), tuple(networks))

    def __bool__(self) -> bool:
        return bool(self.names or self.suffixes or self.networks)

    def allows_name(self, host: str) -> bool:
        name = normalise_host(host)
        return name in self.names or any(name.endswith(suffix) for suffix in self.suffixes)

    def allows_address(self, ip: IPAddress) -> bool:
        if ip in METADATA_ADDRESSES:
            # A range never opens a metadata service; only its exact address does.
            return any(net.num_addresses == 1 and ip in net for net in self.networks)
        return any(ip in net for net in self.networks)


_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*")


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """What the guard lets through.

    allow_private (RESEARCH_ALLOW_PRIVATE, kept for compatibility: research only) lifts the
    address and port checks; the scheme and credential checks and the cloud-metadata block
    always hold. allowed (SSRF_ALLOWED_HOSTS) lets exactly these otherwise refused hosts,
    addresses and ranges through, on any port. allowed_addresses: the same for single
    addresses (tests' local servers). allowed_ports None: any port (webhooks)."""

    allow_private: bool = False
    allowed_ports: frozenset[int] | None = frozenset({80, 443})
    allowed_addresses: frozenset[IPAddress] = field(default_factory=frozenset)
    allowed: AllowList = field(default_factory=AllowList)

    def check_url(self, url: URL) -> tuple[str, int]:
        """Refuse a URL by its form alone (and a literal or localhost host); return (host, port)."""
        scheme = (url.scheme or "").lower()
        if scheme not in ALLOWED_SCHEMES:
            raise FetchError("blocked", f"scheme {scheme or 'missing'} not allowed")
        if url.raw_user is not None or url.raw_password is not None:
            raise FetchError("blocked", "credentials in URL")
        host = url.raw_host
        if not host:
            raise FetchError("blocked", "no host in URL")
        port = url.explicit_port or DEFAULT_PORTS[scheme]
        literal = parse_ip_host(host)
        listed = self.allows_address(literal) if literal is not None else self.allowed.allows_name(host)
        if (
            not (self.allow_private or listed)
            and self.allowed_ports is not None
            and port not in self.allowed_ports
        ):
            raise FetchError("blocked", f"port {port} not allowed")
        if literal is not None:
            self.check_address(literal)
        else:
            problem = name_problem(host, local_allowed=listed or self.allow_private)
            if problem is not None:
                raise FetchError("blocked", problem)
        return host, port

    def allows_address(self, ip: IPAddress) -> bool:
        """Whether `ip` is allow-listed (SSRF_ALLOWED_HOSTS or allowed_addresses)."""
        return ip in self.allowed_addresses or self.allowed.allows_address(ip)

    def check_address(self, ip: IPAddress, *, listed_name: bool = False) -> None:
        """Refuse an address the fetch must not connect to.

        listed_name: the host name was allow-listed, so its private addresses pass (never a
        metadata address)."""
        if self.allows_address(ip):
            return
        problem = address_problem(ip)
        if problem is None:
            return
        if (self.allow_private or listed_name) and problem != "cloud metadata address":
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


async def checked_resolve(
    host: str, port: int, policy: AddressPolicy, resolver: AddressResolver
) -> list[IPAddress]:
    """The addresses of `host`, each checked: one refused address refuses the host."""
    literal = parse_ip_host(host)
    if literal is not None:
        policy.check_address(literal)
        return [literal]
    listed = policy.allowed.allows_name(host)
    problem = name_problem(host, local_allowed=listed or policy.allow_private)
    if problem is not None:
        raise FetchError("blocked", problem)
    addresses = await resolver.resolve(host, port)
    if not addresses:
        raise FetchError("dns", "host does not resolve")
    for ip in addresses:
        policy.check_address(ip, listed_name=listed)
    return addresses
