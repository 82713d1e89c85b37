"""The SSRF guard inside httpx2 (the MCP SDK's HTTP client): every connection's address
is checked when it is made, whatever the URL looked like and whatever DNS answered."""

from __future__ import annotations

import ipaddress

import httpx2
import pytest

from gust.adapters.tools.guarded_http import GuardedTransport, guard_refusal
from gust.adapters.web.guard import AddressPolicy, AllowList
from tests.hostile.ssrf_table import CREDENTIALS, LOOPBACK, PRIVATE, Spelling
from tests.research.conftest import StaticResolver
from tests.support.site_server import SiteServer

GUARDED = AddressPolicy(allowed_ports=None)


def client(policy: AddressPolicy = GUARDED, resolver: StaticResolver | None = None) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=GuardedTransport(policy, resolver), follow_redirects=True, timeout=5)


@pytest.mark.parametrize("spelling", [s for s in LOOPBACK if s.live], ids=lambda s: s.id)
async def test_every_spelling_of_this_machine_is_refused_at_connect(
    site: SiteServer, spelling: Spelling
) -> None:
    async with client() as http:
        with pytest.raises((httpx2.HTTPError, httpx2.InvalidURL, ValueError)) as caught:
            await http.get(spelling.url(site.port, "/article/tides"))
    refused = guard_refusal(caught.value)
    if isinstance(caught.value, httpx2.ConnectError):
        # Credentials are the URL check's concern; at connect time only the address counts.
        expected = PRIVATE if spelling.reason == CREDENTIALS else spelling.reason
        assert refused is not None and refused.reason == expected
    assert site.hits == []


async def test_a_name_resolving_to_loopback_is_refused(site: SiteServer) -> None:
    # No URL check happens here: this is the connect-time check alone (DNS rebinding's
    # second answer meets exactly this).
    resolver = StaticResolver({"rebind.example": ["127.0.0.1"]})
    async with client(resolver=resolver) as http:
        with pytest.raises(httpx2.ConnectError) as caught:
            await http.get(f"http://rebind.example:{site.port}/article/tides")
    refused = guard_refusal(caught.value)
    assert refused is not None and refused.reason == "private address"
    assert resolver.calls == ["rebind.example"]
    assert site.hits == []


async def test_one_refused_answer_refuses_the_host(site: SiteServer) -> None:
    resolver = StaticResolver({"mixed.example": ["93.184.216.34", "127.0.0.1"]})
    async with client(resolver=resolver) as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get(f"http://mixed.example:{site.port}/")
    assert site.hits == []


async def test_an_allow_listed_name_connects_to_the_checked_address(site: SiteServer) -> None:
    resolver = StaticResolver({"mcp.internal": ["127.0.0.1"]})
    policy = AddressPolicy(allowed_ports=None, allowed=AllowList.parse("mcp.internal"))
    async with client(policy, resolver) as http:
        response = await http.get(f"http://mcp.internal:{site.port}/article/tides")
    assert response.status_code == 200 and "Fundy" in response.text
    assert [h.local_address for h in site.hits] == ["127.0.0.1"]


async def test_a_redirect_to_a_private_address_is_refused(site: SiteServer) -> None:
    allowed = AddressPolicy(
        allowed_ports=None, allowed_addresses=frozenset({ipaddress.ip_address("127.0.0.1")})
    )
    target = site.url("/article/bees", host="127.0.0.2")
    async with client(allowed) as http:
        with pytest.raises(httpx2.ConnectError) as caught:
            await http.get(site.url(f"/redirect?to={target}"))
    assert guard_refusal(caught.value) is not None
    assert [h.local_address for h in site.hits] == ["127.0.0.1"]  # the hop to 127.0.0.2 never happened


async def test_environment_proxies_are_ignored(site: SiteServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy would make the connection for us, past the guard.
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{site.port}")
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{site.port}")
    resolver = StaticResolver({"rebind.example": ["10.0.0.1"]})
    async with client(resolver=resolver) as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get("http://rebind.example/secret")
    assert site.hits == []
