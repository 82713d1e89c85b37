"""One table of host spellings the SSRF guard must refuse, shared by every fetcher's tests.

Each entry is a host as written in a URL's authority and the guard's reason. `live` marks
the spellings that denote this machine (loopback, or a localhost name): the research and
webhook tests point those at their real local servers and check that nothing arrived. The
others (private, link-local, metadata, reserved) are only ever checked against the guard,
never connected to.
"""

from __future__ import annotations

from dataclasses import dataclass

PRIVATE = "private address"
METADATA = "cloud metadata address"
MULTICAST = "multicast address"
RESERVED = "reserved address"
CREDENTIALS = "credentials in URL"
INVALID = "invalid host"


@dataclass(frozen=True, slots=True)
class Spelling:
    host: str  # as written between `//` and the port
    reason: str  # FetchError.reason of the refusal
    live: bool = False  # denotes this machine: safe to point at a local test server
    note: str = ""

    def url(self, port: int, path: str = "/hook") -> str:
        return f"http://{self.host}:{port}{path}"

    @property
    def id(self) -> str:
        return self.note or self.host


LOOPBACK = [
    Spelling("127.0.0.1", PRIVATE, True),
    Spelling("127.8.9.10", PRIVATE, True, "127/8 beyond .1"),
    Spelling("2130706433", PRIVATE, True, "decimal"),
    Spelling("0x7f000001", PRIVATE, True, "hex"),
    Spelling("0X7F000001", PRIVATE, True, "hex upper"),
    Spelling("0x7f.0.0.1", PRIVATE, True, "hex octet"),
    Spelling("0177.0.0.1", PRIVATE, True, "octal"),
    Spelling("0177.0000.0000.0001", PRIVATE, True, "octal padded"),
    Spelling("127.1", PRIVATE, True, "short form"),
    Spelling("127.0.1", PRIVATE, True, "short form 3"),
    Spelling("127.0.0.1.", PRIVATE, True, "trailing dot"),
    Spelling("\uff11\uff12\uff17.\uff10.\uff10.\uff11", PRIVATE, True, "full-width digits"),
    Spelling("127\u30020\u30020\u30021", PRIVATE, True, "ideographic dots"),
    Spelling("[::1]", PRIVATE, True),
    Spelling("[0:0:0:0:0:0:0:1]", PRIVATE, True, "ipv6 long loopback"),
    Spelling("[::ffff:127.0.0.1]", PRIVATE, True, "ipv4-mapped"),
    Spelling("[::ffff:7f00:1]", PRIVATE, True, "ipv4-mapped hex"),
    Spelling("[::ffff:0:7f00:1]", PRIVATE, True, "ipv4-translated"),
    Spelling("[::127.0.0.1]", PRIVATE, True, "ipv4-compatible"),
    Spelling("[64:ff9b::7f00:1]", PRIVATE, True, "nat64"),
    Spelling("[2002:7f00:1::]", PRIVATE, True, "6to4"),
    Spelling("localhost", PRIVATE, True),
    Spelling("LOCALHOST", PRIVATE, True, "localhost upper"),
    Spelling("localhost.", PRIVATE, True, "localhost trailing dot"),
    Spelling("api.localhost", PRIVATE, True, "*.localhost"),
    Spelling("evil.example@127.0.0.1", CREDENTIALS, True, "userinfo"),
    Spelling("\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54", PRIVATE, True, "full-width localhost"),
    Spelling("LocalHost..", PRIVATE, True, "localhost two dots"),
    Spelling("127.000.000.001", PRIVATE, True, "zero-padded"),
    Spelling("\u2081\u2082\u2087.\u2080.\u2080.\u2081", PRIVATE, True, "subscript digits"),
    Spelling("%6c%6fcalhost", INVALID, True, "percent-encoded name"),
    Spelling("127.0.0.1%2509", INVALID, True, "percent after address"),
    Spelling("[::ffff:127.1]", INVALID, True, "malformed mapped"),
    Spelling("[::ffff:0x7f00:1]", INVALID, True, "malformed mapped hex"),
    Spelling("0.0.0.0", PRIVATE, True, "unspecified v4"),  # noqa: S104 - connects to this host
    Spelling("0", PRIVATE, True, "zero"),
    Spelling("[::]", PRIVATE, True, "unspecified v6"),
]

INTERNAL = [
    Spelling("10.0.0.1", PRIVATE),
    Spelling("10.1", PRIVATE, note="short private"),
    Spelling("012.0.0.1", PRIVATE, note="octal 10/8"),
    Spelling("167772161", PRIVATE, note="decimal 10/8"),
    Spelling("172.16.0.1", PRIVATE),
    Spelling("192.168.0.1", PRIVATE),
    Spelling("0xc0a80001", PRIVATE, note="hex 192.168"),
    Spelling("100.64.0.1", PRIVATE, note="cgnat"),
    Spelling("169.254.1.1", PRIVATE, note="link-local"),
    Spelling("169.254.169.254", METADATA),
    Spelling("2852039166", METADATA, note="decimal metadata"),
    Spelling("0xa9fea9fe", METADATA, note="hex metadata"),
    Spelling("0251.0376.0251.0376", METADATA, note="octal metadata"),
    Spelling("169.254.43518", METADATA, note="short metadata"),
    Spelling("[::ffff:169.254.169.254]", METADATA, note="mapped metadata"),
    Spelling("[::ffff:a9fe:a9fe]", METADATA, note="mapped hex metadata"),
    Spelling("[::ffff:0:a9fe:a9fe]", METADATA, note="translated metadata"),
    Spelling("[::a9fe:a9fe]", METADATA, note="compatible metadata"),
    Spelling("[64:ff9b::a9fe:a9fe]", METADATA, note="nat64 metadata"),
    Spelling("[64:ff9b:1::a9fe:a9fe]", METADATA, note="local nat64 metadata"),
    Spelling("[2002:a9fe:a9fe::1]", METADATA, note="6to4 metadata"),
    Spelling("[2001:0:4136:e378:8000:63bf:5601:5601]", METADATA, note="teredo metadata"),
    Spelling("[2606:4700::5efe:a9fe:a9fe]", METADATA, note="isatap metadata"),
    Spelling("[fd00:ec2::254]", METADATA, note="aws ipv6 metadata"),
    Spelling("168.63.129.16", METADATA, note="azure host service"),
    Spelling("100.100.100.200", METADATA, note="alibaba metadata"),
    Spelling("metadata.google.internal", PRIVATE, note="gcp metadata name"),
    Spelling("[fe80::1]", PRIVATE, note="link-local v6"),
    Spelling("[fe80::1%25eth0]", PRIVATE, note="zone id"),
    Spelling("[fc00::1]", PRIVATE, note="unique local"),
    Spelling("[fd12:3456::1]", PRIVATE, note="unique local fd"),
    Spelling("[fec0::1]", PRIVATE, note="site-local"),
    Spelling("224.0.0.1", MULTICAST),
    Spelling("[ff02::1]", MULTICAST, note="multicast v6"),
    Spelling("255.255.255.255", PRIVATE, note="broadcast"),
    Spelling("240.0.0.1", PRIVATE, note="reserved 240/4"),
    Spelling("198.18.0.1", PRIVATE, note="benchmarking"),
    Spelling("192.0.2.1", PRIVATE, note="documentation"),
    Spelling("203.0.113.9", PRIVATE, note="documentation 3"),
    Spelling("[2001:db8::1]", PRIVATE, note="documentation v6"),
    Spelling("[3fff::1]", RESERVED, note="documentation v6 new"),
    Spelling("192.0.0.8", RESERVED, note="ietf assignments"),
    Spelling("192.88.99.1", RESERVED, note="6to4 relay"),
]

ALL = LOOPBACK + INTERNAL
