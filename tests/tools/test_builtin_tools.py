"""The built-in tools over the real fetcher, extractor and SearxNG client, through the ToolBox."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime, timedelta

import pytest

from gust.adapters.tools.builtin import BuiltinTools
from gust.adapters.web.extract import HtmlExtractor
from gust.adapters.web.fetcher import SafeFetcher
from gust.adapters.web.guard import AddressPolicy
from gust.adapters.web.searx import SearxClient
from gust.services.tools import ToolBox, ToolLimits
from tests.hostile.ssrf_table import LOOPBACK, Spelling
from tests.support.env import free_port
from tests.support.site_server import SiteServer


def toolbox(
    site: SiteServer | None, *, allow_site: bool = True, search: bool = True, **limits: int
) -> ToolBox:
    """The built-ins as the app builds them; `allow_site` lets the fetcher reach 127.0.0.1
    (as SSRF_ALLOWED_HOSTS would), otherwise the guard's defaults hold."""
    allowed = frozenset({ipaddress.ip_address("127.0.0.1")}) if allow_site else frozenset()
    fetcher = SafeFetcher(policy=AddressPolicy(allowed_addresses=allowed), page_timeout=5)
    searx = SearxClient(site.url(""), user_agent="test") if site is not None and search else None
    tools = BuiltinTools(fetcher=fetcher, extractor=HtmlExtractor(), search=searx)
    return ToolBox([tools], ToolLimits(timeout=5, **limits))


async def test_builtins_are_listed_only_when_their_ports_exist(site: SiteServer) -> None:
    full = await toolbox(site).list_tools()
    assert [t.name for t in full] == ["current_time", "fetch_url", "web_search"]
    assert all(t.parameters["type"] == "object" for t in full)
    assert [t.name for t in await BuiltinTools().list_tools()] == ["current_time"]
    assert [t.name for t in await toolbox(site, search=False).list_tools()] == ["current_time", "fetch_url"]


async def test_current_time_in_utc_and_in_a_zone() -> None:
    box = ToolBox([BuiltinTools()])
    utc = await box.call("current_time", "{}")
    assert utc.ok
    stamp = datetime.fromisoformat(utc.content.split(" ")[0])
    assert abs(stamp - datetime.now(UTC)) < timedelta(minutes=5)
    paris = await box.call("current_time", {"timezone": "Europe/Paris"})
    assert paris.ok and "Europe/Paris" in paris.content
    assert datetime.fromisoformat(paris.content.split(" ")[0]).utcoffset() in (
        timedelta(hours=1),
        timedelta(hours=2),
    )
    for bad in ('{"timezone": "Mars/Olympus"}', '{"timezone": 5}', '{"timezone": "../../etc/passwd"}'):
        result = await box.call("current_time", bad)
        assert not result.ok and "time zone" in result.content


async def test_fetch_url_reads_the_main_text(site: SiteServer) -> None:
    box = toolbox(site)
    result = await box.call("fetch_url", json.dumps({"url": site.url("/article/tides")}))
    assert result.ok, result.content
    assert result.content.startswith("Title: Tidal Power in the Bay of Fundy\nURL: ")
    assert "sixteen metres" in result.content
    assert "NAVLINK" not in result.content and "SCRIPTCODE" not in result.content
    assert result.elapsed_ms >= 0


async def test_fetch_url_failures_are_error_results(site: SiteServer) -> None:
    box = toolbox(site)
    cases = {
        "/missing": "could not fetch the page",
        "/image.png": "could not fetch the page",
    }
    for path, expected in cases.items():
        result = await box.call("fetch_url", {"url": site.url(path)})
        assert not result.ok and result.content.startswith(expected), result.content
    for arguments in ({}, {"url": ""}, {"url": 42}, {"url": "x" * 3000}):
        result = await box.call("fetch_url", arguments)
        assert not result.ok and "'url'" in result.content
    scheme = await box.call("fetch_url", {"url": "file:///etc/passwd"})
    assert not scheme.ok and scheme.content.startswith("refused to fetch this URL")


@pytest.mark.parametrize("spelling", [s for s in LOOPBACK if s.live], ids=lambda s: s.id)
async def test_fetch_url_refuses_every_spelling_of_this_machine(site: SiteServer, spelling: Spelling) -> None:
    box = toolbox(site, allow_site=False)
    result = await box.call("fetch_url", {"url": spelling.url(site.port, "/article/tides")})
    assert not result.ok
    assert result.content.startswith("refused to fetch this URL"), result.content
    assert site.hits == []  # nothing reached the server


async def test_fetch_url_refuses_a_redirect_to_a_private_address(site: SiteServer) -> None:
    # The page is allowed (127.0.0.1); its redirect to 127.0.0.2 is not.
    box = toolbox(site)
    target = site.url("/article/bees", host="127.0.0.2")
    result = await box.call("fetch_url", {"url": site.url(f"/redirect?to={target}")})
    assert not result.ok and "refused" in result.content
    assert [h.local_address for h in site.hits] == ["127.0.0.1"]


async def test_web_search_lists_the_results(site: SiteServer) -> None:
    site.search_results = [
        {"url": "https://a.example/tides", "title": "Tides", "content": "Highest tides on Earth"},
        {"url": "https://b.example/bees", "title": "Bees", "content": ""},
    ]
    result = await toolbox(site).call("web_search", {"query": "fundy tides", "limit": 2})
    assert result.ok
    assert result.content == (
        "1. Tides\n   https://a.example/tides\n   Highest tides on Earth\n2. Bees\n   https://b.example/bees"
    )
    assert site.search_queries == ["fundy tides"]
    for bad in ({"query": ""}, {"query": "x", "limit": 0}, {"query": "x", "limit": "3"}, {"limit": 3}):
        assert not (await toolbox(site).call("web_search", bad)).ok


async def test_web_search_with_the_engine_down_is_an_error_result() -> None:
    fetcher = SafeFetcher(page_timeout=2)
    searx = SearxClient(f"http://127.0.0.1:{free_port()}", user_agent="test")
    box = ToolBox(
        [BuiltinTools(fetcher=fetcher, extractor=HtmlExtractor(), search=searx)], ToolLimits(timeout=5)
    )
    try:
        result = await box.call("web_search", {"query": "anything"})
    finally:
        await searx.close()
    assert not result.ok and result.content.startswith("the web search failed")


async def test_long_results_are_cut_to_the_limit_and_say_so(site: SiteServer) -> None:
    box = toolbox(site, result_max_chars=300)
    result = await box.call("fetch_url", {"url": site.url("/article/tides")})
    assert result.ok and result.cut
    assert len(result.content) <= 300
    assert result.content.endswith("more characters]")
