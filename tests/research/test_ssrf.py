"""SSRF: with the guard on, every internal target is refused before any connection.

The local site server listens on 127.0.0.1, 127.0.0.2 and ::1 and records every request:
a refusal that still connected would show up in its hit log.
"""

from __future__ import annotations

import ipaddress

import pytest

from gust.adapters.web.fetcher import SafeFetcher
from gust.adapters.web.guard import AddressPolicy
from gust.ports.web import FetchError
from tests.research.conftest import HAS_IPV6, StaticResolver
from tests.support.site_server import SiteServer

# {port} is the site's port: it is in the allowed ports, so the address check must refuse.
INTERNAL_URLS = [
    ("http://127.0.0.1:{port}/a", "private address"),
    ("http://localhost:{port}/b", "private address"),
    ("http://[::1]:{port}/c", "private address"),
    ("http://10.0.0.1/d", "private address"),
    ("http://10.255.255.254:{port}/d2", "private address"),
    ("http://192.168.1.1/e", "private address"),
    ("http://172.16.5.4/e2", "private address"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata address"),
    ("http://100.64.0.1/cgnat", "private address"),
    ("http://224.0.0.1/multicast", "multicast address"),
    ("http://0.0.0.0:{port}/f", "private address"),
    ("http://0x7f000001:{port}/g", "private address"),
    ("http://2130706433:{port}/h", "private address"),
    ("http://0177.0.0.1:{port}/i", "private address"),
    ("http://127.1:{port}/j", "private address"),
    ("http://[::ffff:127.0.0.1]:{port}/k", "private address"),
    ("http://[::ffff:7f00:1]:{port}/k2", "private address"),
    ("http://[fe80::1]/l", "private address"),
    ("http://intranet.example.com:{port}/m", "private address"),  # resolves to 127.0.0.1
    ("http://dual.example.com:{port}/m2", "private address"),  # one public, one loopback answer
    ("file:///etc/passwd", "scheme file not allowed"),
    ("gopher://127.0.0.1:{port}/_GET%20/n", "scheme gopher not allowed"),
    ("ftp://127.0.0.1:{port}/o", "scheme ftp not allowed"),
    ("http://user:secret@127.0.0.1:{port}/p", "credentials in URL"),
    ("http://example.com@127.0.0.1:{port}/q", "credentials in URL"),
    ("http://127.0.0.1:{port_other}/r", "port {port_other} not allowed"),
]


def guarded(site: SiteServer, resolver: StaticResolver | None = None) -> SafeFetcher:
    resolver = resolver or StaticResolver(
        {"intranet.example.com": ["127.0.0.1"], "dual.example.com": ["93.184.216.34", "127.0.0.1"]}
    )
    return SafeFetcher(policy=AddressPolicy(allowed_ports=frozenset({80, 443, site.port})), resolver=resolver)


@pytest.mark.parametrize(("template", "reason"), INTERNAL_URLS)
async def test_internal_targets_are_refused_without_a_connection(
    site: SiteServer, template: str, reason: str
) -> None:
    port_other = site.port + 1 if site.port < 65535 else site.port - 1
    url = template.format(port=site.port, port_other=port_other)
    fetcher = guarded(site)
    try:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(url, time_limit=5)
    finally:
        await fetcher.close()
    assert info.value.kind == "blocked"
    assert info.value.reason == reason.format(port_other=port_other)
    assert site.hits == []


async def test_the_site_is_reachable_on_every_address_the_ssrf_tests_use(site: SiteServer) -> None:
    """The control for the test above: without the guard, the same URLs do reach the site."""
    hosts = ["127.0.0.1", "127.0.0.2", "localhost", "0x7f000001", *(["[::1]"] if HAS_IPV6 else [])]
    fetcher = SafeFetcher(policy=AddressPolicy(allow_private=True))
    try:
        for host in hosts:
            await fetcher.fetch(f"http://{host}:{site.port}/reach")
    finally:
        await fetcher.close()
    assert len(site.hits) == len(hosts)
    assert {h.local_address for h in site.hits} >= {"127.0.0.1", "127.0.0.2"}


def _one_allowed_address(site: SiteServer) -> tuple[SafeFetcher, StaticResolver]:
    """A 'public' name for the site at 127.0.0.2, the only address this policy lets through."""
    resolver = StaticResolver({"news.example.com": ["127.0.0.2"]})
    policy = AddressPolicy(
        allowed_ports=frozenset({80, 443, site.port}),
        allowed_addresses=frozenset({ipaddress.ip_address("127.0.0.2")}),
    )
    return SafeFetcher(policy=policy, resolver=resolver), resolver


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://127.0.0.1:{port}/internal", "private address"),
        ("http://localhost:{port}/internal", "private address"),
        ("http://0x7f000001:{port}/internal", "private address"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata address"),
        ("file:///etc/passwd", "scheme file not allowed"),
        ("gopher://127.0.0.1:{port}/_internal", "scheme gopher not allowed"),
        ("http://news.example.com:22/internal", "port 22 not allowed"),
    ],
)
async def test_a_public_looking_url_that_redirects_inside_is_refused_at_the_hop(
    site: SiteServer, target: str, reason: str
) -> None:
    fetcher, _ = _one_allowed_address(site)
    first = site.url("/redirect", host="news.example.com")
    try:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(f"{first}?to={target.format(port=site.port)}")
    finally:
        await fetcher.close()
    assert (info.value.kind, info.value.reason) == ("blocked", reason)
    # The first hop reached the site on its allowed address; the target was never requested.
    assert [(h.path, h.local_address) for h in site.hits] == [("/redirect", "127.0.0.2")]


async def test_the_same_redirect_is_followed_when_the_target_is_allowed(site: SiteServer) -> None:
    """Control: the redirect test fails if the hop is not checked (here the target is allowed)."""
    resolver = StaticResolver({"news.example.com": ["127.0.0.2"]})
    both = frozenset({ipaddress.ip_address("127.0.0.2"), ipaddress.ip_address("127.0.0.1")})
    fetcher = SafeFetcher(
        policy=AddressPolicy(allowed_ports=frozenset({site.port}), allowed_addresses=both), resolver=resolver
    )
    first = site.url("/redirect", host="news.example.com")
    try:
        page = await fetcher.fetch(f"{first}?to={site.url('/internal')}")
    finally:
        await fetcher.close()
    assert "INTERNAL SECRET" in page.text
    assert [(h.path, h.local_address) for h in site.hits] == [
        ("/redirect", "127.0.0.2"),
        ("/internal", "127.0.0.1"),
    ]


async def test_allow_private_reaches_loopback_but_never_other_schemes(site: SiteServer) -> None:
    fetcher = SafeFetcher(policy=AddressPolicy(allow_private=True))
    try:
        page = await fetcher.fetch(site.url("/article/tides"))
        assert "Parrsboro" in page.text
        for url in ("file:///etc/passwd", f"gopher://127.0.0.1:{site.port}/_x"):
            with pytest.raises(FetchError, match="scheme"):
                await fetcher.fetch(url)
        with pytest.raises(FetchError, match="scheme file not allowed"):
            await fetcher.fetch(site.url("/redirect") + "?to=file:///etc/passwd")
    finally:
        await fetcher.close()
    assert site.paths() == ["/article/tides", "/redirect"]
