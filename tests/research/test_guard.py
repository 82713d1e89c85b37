"""The SSRF guard's rules on their own: address classes, numeric host forms, URL form."""

from __future__ import annotations

import ipaddress

import pytest
from yarl import URL

from gust.adapters.web.guard import AddressPolicy, address_problem, parse_ip_host
from gust.ports.web import FetchError


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("::1", "::1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
    ],
)
def test_numeric_hosts_are_read_as_the_address_they_denote(host: str, address: str) -> None:
    assert parse_ip_host(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", ["example.com", "deadbeef", "1e100.net", "256.1.1.1.1", "0x1g", "09.1.1.1"])
def test_names_are_not_addresses(host: str) -> None:
    assert parse_ip_host(host) is None


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("127.0.0.1", "private address"),
        ("127.8.9.10", "private address"),
        ("10.0.0.5", "private address"),
        ("172.16.0.1", "private address"),
        ("192.168.1.1", "private address"),
        ("169.254.1.1", "private address"),
        ("100.64.0.1", "private address"),  # CGNAT
        ("100.127.255.254", "private address"),
        ("0.0.0.0", "private address"),  # noqa: S104
        ("169.254.169.254", "cloud metadata address"),
        ("fd00:ec2::254", "cloud metadata address"),
        ("224.0.0.1", "multicast address"),
        ("ff02::1", "multicast address"),
        ("240.0.0.1", "private address"),
        ("255.255.255.255", "private address"),
        ("::1", "private address"),
        ("::", "private address"),
        ("fe80::1", "private address"),
        ("fc00::1", "private address"),
        ("::ffff:127.0.0.1", "private address"),  # IPv4-mapped loopback
        ("::ffff:169.254.169.254", "cloud metadata address"),
        ("::ffff:10.0.0.1", "private address"),
        ("::ffff:8.8.8.8", "IPv4-mapped address"),
        ("::127.0.0.1", "private address"),  # IPv4-compatible (deprecated) form
        ("64:ff9b::7f00:1", "private address"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", "private address"),  # 6to4 of 127.0.0.1
        ("2001:db8::1", "private address"),  # documentation range (Python counts it private)
        ("198.51.100.7", "private address"),
        ("192.0.2.1", "private address"),  # TEST-NET-1
    ],
)
def test_refused_addresses(address: str, problem: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme file not allowed"),
        ("gopher://example.com/_x", "scheme gopher not allowed"),
        ("ftp://example.com/", "scheme ftp not allowed"),
        ("http://user:pw@example.com/", "credentials in URL"),
        ("http://example.com@127.0.0.1/", "credentials in URL"),
        ("http://example.com:8080/", "port 8080 not allowed"),
        ("https://example.com:22/", "port 22 not allowed"),
    ],
)
def test_url_form_checks(url: str, reason: str) -> None:
    with pytest.raises(FetchError) as info:
        AddressPolicy().check_url(URL(url))
    assert info.value.kind == "blocked"
    assert info.value.reason == reason


def test_default_ports_pass() -> None:
    assert AddressPolicy().check_url(URL("http://example.com/")) == ("example.com", 80)
    assert AddressPolicy().check_url(URL("https://example.com/a")) == ("example.com", 443)


def test_allow_private_lifts_address_and_port_checks_but_not_scheme_or_metadata() -> None:
    policy = AddressPolicy(allow_private=True)
    policy.check_address(ipaddress.ip_address("127.0.0.1"))
    policy.check_address(ipaddress.ip_address("10.0.0.1"))
    assert policy.check_url(URL("http://intranet:8080/")) == ("intranet", 8080)
    with pytest.raises(FetchError, match="scheme file not allowed"):
        policy.check_url(URL("file:///etc/passwd"))
    with pytest.raises(FetchError, match="credentials"):
        policy.check_url(URL("http://a:b@intranet/"))
    with pytest.raises(FetchError, match="cloud metadata"):
        policy.check_address(ipaddress.ip_address("169.254.169.254"))


def test_allowed_addresses_let_exactly_those_through() -> None:
    policy = AddressPolicy(allowed_addresses=frozenset({ipaddress.ip_address("127.0.0.2")}))
    policy.check_address(ipaddress.ip_address("127.0.0.2"))
    with pytest.raises(FetchError, match="private address"):
        policy.check_address(ipaddress.ip_address("127.0.0.1"))
