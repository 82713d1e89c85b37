"""ResearchService.prepare over the real fetcher, extractor and SearxNG client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gust.adapters.web.extract import HtmlExtractor
from gust.adapters.web.fetcher import SafeFetcher
from gust.adapters.web.guard import AddressPolicy
from gust.adapters.web.searx import SearxClient
from gust.domain.events import StatusEvent
from gust.ports.web import NoWebSearch, WebSearch
from gust.services.research import ResearchOptions, ResearchService, display_url, strip_command
from tests.support.site_server import ARTICLES, SiteServer

Make = Callable[..., ResearchService]


class Events:
    def __init__(self) -> None:
        self.items: list[StatusEvent] = []

    async def __call__(self, event: StatusEvent) -> None:
        self.items.append(event)

    def details(self, stage: str | None = None) -> list[str]:
        return [e["detail"] for e in self.items if stage is None or e["stage"] == stage]


@pytest.fixture
async def make_service(site: SiteServer) -> AsyncIterator[Make]:
    made: list[ResearchService] = []

    def make(*, allow_private: bool = True, search: bool = False, **options: Any) -> ResearchService:
        policy = AddressPolicy(allow_private=allow_private, allowed_ports=frozenset({80, 443, site.port}))
        searx: WebSearch = SearxClient(site.url(""), user_agent="test") if search else NoWebSearch()
        service = ResearchService(
            SafeFetcher(policy=policy, page_timeout=5), HtmlExtractor(), searx, ResearchOptions(**options)
        )
        made.append(service)
        return service

    yield make
    for service in made:
        await service.close()


def test_urls_in_a_message() -> None:
    service = ResearchService(SafeFetcher(), HtmlExtractor(), options=ResearchOptions(max_sources=3))
    text = (
        "See https://a.example/x, and (https://b.example/wiki/Foo_(bar)). Also <http://c.example/p?q=1#frag> "
        "and [link](https://d.example/y) again https://a.example/x. Not ftp://e.example/ or www.f.example."
    )
    assert service.urls_in(text) == [
        "https://a.example/x",
        "https://b.example/wiki/Foo_(bar)",
        "http://c.example/p?q=1",
    ]
    assert ResearchService(SafeFetcher(), HtmlExtractor()).urls_in(text)[3] == "https://d.example/y"
    assert service.urls_in("no links here, only example.com") == []


def test_trigger_rules() -> None:
    auto = ResearchService(SafeFetcher(), HtmlExtractor())
    manual = ResearchService(SafeFetcher(), HtmlExtractor(), options=ResearchOptions(auto_fetch_urls=False))
    assert auto.wants_research("read https://example.com/a please", research_flag=False)
    assert not manual.wants_research("read https://example.com/a please", research_flag=False)
    assert manual.wants_research("anything", research_flag=True)
    assert manual.wants_research("/research why is the sky blue", research_flag=False)
    assert manual.wants_research("  /research", research_flag=False)
    assert not manual.wants_research("/researcher says hi", research_flag=False)
    assert not auto.wants_research("hello", research_flag=False)
    assert strip_command("/research  why?") == "why?"
    assert strip_command("why /research") == "why /research"


def test_status_urls_never_show_credentials() -> None:
    assert display_url("http://user:secret@example.com/a") == "http://…@example.com/a"
    assert len(display_url("http://example.com/" + "a" * 500)) == 120


async def test_two_articles_become_numbered_sources(site: SiteServer, make_service: Make) -> None:
    service = make_service()
    events = Events()
    tides, bees = site.url("/article/tides"), site.url("/article/bees")
    result = await service.prepare(
        f"Compare {tides} and {bees}: how much power does each turbine produce?",
        research_flag=False,
        emit=events,
    )
    assert result is not None
    assert result.sources == [
        {"n": 1, "url": tides, "title": "Tidal Power in the Bay of Fundy"},
        {"n": 2, "url": bees, "title": "How Honeybees Choose a New Home"},
    ]
    assert "Each turbine produces two megawatts at peak flow" in result.context
    assert "[1] Tidal Power in the Bay of Fundy" in result.context
    assert "cite the source of each statement as [n]" in result.context
    for noise in ("NAVLINK", "SCRIPTCODE", "FOOTERTEXT", "SIDEBARTEXT"):
        assert noise not in result.context
    assert all(e["type"] == "status" and isinstance(e["done"], bool) for e in events.items)
    stages = [e["stage"] for e in events.items]
    assert stages.index("fetching") < stages.index("extracting") < stages.index("ranking")
    assert "fetching 127.0.0.1" in events.details("fetching")
    assert events.items[-1] == {
        "type": "status",
        "stage": "ranking",
        "detail": "2 sources in context",
        "done": True,
    }


async def test_unreadable_page_still_yields_a_source(site: SiteServer, make_service: Make) -> None:
    result = await make_service().prepare(
        f"/research what did the garden committee agree? {site.url('/unreadable')}",
        research_flag=False,
        emit=Events(),
    )
    assert result is not None
    assert result.sources[0]["title"] == "Community Garden Minutes"
    assert "watered on Tuesdays and Fridays" in result.context


async def test_refusals_are_status_events_and_the_rest_still_works(
    site: SiteServer, make_service: Make
) -> None:
    service = make_service(allow_private=False)
    events = Events()
    message = (
        f"Read http://127.0.0.1:{site.port}/a and http://169.254.169.254/latest/meta-data/ "
        "and file:///etc/passwd and gopher://127.0.0.1:70/_x"
    )
    result = await service.prepare(message, research_flag=False, emit=events)
    assert site.hits == []
    details = events.details("fetching")
    assert f"blocked: private address (http://127.0.0.1:{site.port}/a)" in details
    assert "blocked: cloud metadata address (http://169.254.169.254/latest/meta-data/)" in details
    assert "blocked: scheme file not allowed (file:///etc/passwd)" in details
    assert "blocked: scheme gopher not allowed (gopher://127.0.0.1:70/_x)" in details
    assert [e["done"] for e in events.items if e["detail"].startswith("blocked")] == [True] * 4
    assert result is not None and result.sources == []
    assert "none could be retrieved" in result.context
    assert len(result.failures) == 4


async def test_failures_of_some_sources_keep_the_others(site: SiteServer, make_service: Make) -> None:
    events = Events()
    result = await make_service().prepare(
        f"{site.url('/article/bees')} {site.url('/image.png')} {site.url('/missing')}",
        research_flag=False,
        emit=events,
    )
    assert result is not None
    assert [s["url"] for s in result.sources] == [site.url("/article/bees")]
    assert f"unsupported content type image/png ({site.url('/image.png')})" in events.details()
    assert f"HTTP 404 ({site.url('/missing')})" in events.details()


async def test_endless_page_is_cut_and_used(site: SiteServer, make_service: Make) -> None:
    events = Events()
    service = make_service(page_timeout=1.0)
    result = await service.prepare(
        f"what about slow rivers {site.url('/endless')}", research_flag=False, emit=events
    )
    assert result is not None and result.sources[0]["title"] == "Endless Stream"
    assert any(d.startswith("fetched 127.0.0.1 (timeout: cut at") for d in events.details("fetching"))


async def test_searxng_results_become_sources(site: SiteServer, make_service: Make) -> None:
    site.search_results = [
        {"url": site.url("/article/bees"), "title": "Bees (search title)", "content": "bees", "engine": "x"},
        {"url": site.url("/article/tides"), "title": "Tides", "content": "tides", "engine": "x"},
        {"url": "ftp://ignored.example/", "title": "not http"},
    ]
    events = Events()
    result = await make_service(search=True).prepare(
        "/research how do honeybee swarms choose a new home?", research_flag=False, emit=events
    )
    assert site.search_queries == ["how do honeybee swarms choose a new home?"]
    assert result is not None
    assert [s["title"] for s in result.sources] == [
        "How Honeybees Choose a New Home",
        "Tidal Power in the Bay of Fundy",
    ]
    assert ARTICLES["bees"][1][2] in result.context  # the quorum paragraph answers the question
    assert events.details("searching") == ["searching the web", "2 results"]


async def test_research_flag_without_urls_or_search_is_nothing_to_do(make_service: Make) -> None:
    events = Events()
    assert await make_service().prepare("why is the sky blue?", research_flag=True, emit=events) is None
    assert events.items == [
        {
            "type": "status",
            "stage": "searching",
            "detail": "no URL in the message and no web search configured",
            "done": True,
        }
    ]
    assert await make_service().prepare("hello", research_flag=False, emit=events) is None
    assert len(events.items) == 1


async def test_search_failure_is_reported_and_urls_still_fetched(
    site: SiteServer, make_service: Make
) -> None:
    service = make_service(search=True)
    assert isinstance(service.search, SearxClient)
    service.search.endpoint = service.search.endpoint.with_path("/missing")  # the engine answers 404
    events = Events()
    result = await service.prepare(
        f"/research bees {site.url('/article/bees')}", research_flag=False, emit=events
    )
    assert "search failed: search engine answered HTTP 404" in events.details("searching")
    assert result is not None and len(result.sources) == 1
