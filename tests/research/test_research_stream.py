"""Research through POST /chat/stream: status events, the sources event, what the model is
sent (the fake upstream echoes the messages it received), and the SSRF guard end to end."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gust.adapters.web.fetcher import SafeFetcher
from gust.adapters.web.guard import AddressPolicy
from tests.research.conftest import HAS_IPV6, StaticResolver
from tests.streaming.helpers import deltas, stream, user_id, wait_final
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.site_server import ARTICLES, SiteServer
from tests.support.sse import SSEEvent
from tests.support.wait import until

StartApp = Callable[..., Awaitable[RunningApp]]
NOISE = ("NAVLINK", "SCRIPTCODE", "STYLECODE", "FOOTERTEXT", "SIDEBARTEXT")


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    fake = await FakeUpstream().start()
    fake.script = Script(echo=True)
    yield fake
    await fake.stop()


@pytest.fixture
async def start_research_app(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[StartApp]:
    running: list[RunningApp] = []

    async def start(**overrides: Any) -> RunningApp:
        values: dict[str, Any] = {"models_file": upstream.models_file(tmp_path), "checkpoint_interval": 0.05}
        values.update(overrides)
        app = await start_app(make_settings(tmp_path / f"data{len(running)}", **values))
        running.append(app)
        return app

    yield start
    for app in running:
        await app.stop()


async def sign_in(app: RunningApp, http: aiohttp.ClientSession, email: str = "r@example.com") -> Api:
    return await Api(app.url, http).register_and_login(email)


def sent_messages(events: list[SSEEvent]) -> list[dict[str, Any]]:
    """The messages the upstream received, as the echoing fake answered them."""
    messages: list[dict[str, Any]] = json.loads(deltas(events))
    return messages


def research_context(events: list[SSEEvent]) -> str:
    """The system message research added to the prompt."""
    contexts: list[str] = [
        m["content"]
        for m in sent_messages(events)
        if m["role"] == "system" and ("Web sources" in m["content"] or "web pages" in m["content"])
    ]
    assert len(contexts) == 1, contexts
    return contexts[0]


def statuses(events: list[SSEEvent]) -> list[dict[str, Any]]:
    return [e.data for e in events if e.event == "status"]


async def test_two_articles_yield_status_sources_and_main_text_for_the_model(
    start_research_app: StartApp, site: SiteServer, http: aiohttp.ClientSession
) -> None:
    app = await start_research_app(ssrf_allowed_hosts="127.0.0.1")  # the site is on loopback
    user = await sign_in(app, http)
    tides, bees = site.url("/article/tides"), site.url("/article/bees")
    events = await stream(user, {"message": f"What do these say? {tides} {bees}"})

    kinds = [e.event for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert kinds.index("status") < kinds.index("sources") < kinds.index("delta")
    stages = {s["stage"] for s in statuses(events)}
    assert {"fetching", "extracting", "ranking"} <= stages
    assert all(isinstance(s["done"], bool) and s["detail"] for s in statuses(events))
    sources = next(e.data["sources"] for e in events if e.event == "sources")
    assert sources == [
        {"n": 1, "url": tides, "title": "Tidal Power in the Bay of Fundy"},
        {"n": 2, "url": bees, "title": "How Honeybees Choose a New Home"},
    ]

    messages = sent_messages(events)
    assert messages[-1] == {"role": "user", "content": f"What do these say? {tides} {bees}"}
    context = research_context(events)
    for paragraph in ARTICLES["tides"][1] + ARTICLES["bees"][1]:
        assert paragraph in context
    for noise in NOISE:
        assert noise not in context
    assert "[n]" in context

    done = events[-1].data
    assert done["status"] == "complete"
    stored = await wait_final(app, await user_id(user), done["message_id"])
    assert stored.sources == sources
    chat = await user.get(f"/api/chats/{events[0].data['chat_id']}")
    assert chat.json["messages"][1]["sources"] == sources


async def test_unreadable_page_reaches_the_model_through_the_fallback(
    start_research_app: StartApp, site: SiteServer, http: aiohttp.ClientSession
) -> None:
    app = await start_research_app(research_allow_private=True)
    user = await sign_in(app, http)
    events = await stream(user, {"message": f"summarise {site.url('/unreadable')}"})
    sources = next(e.data["sources"] for e in events if e.event == "sources")
    assert [s["title"] for s in sources] == ["Community Garden Minutes"]
    context = research_context(events)
    assert "watered on Tuesdays and Fridays" in context and "Water schedule agreed" in context


async def test_ssrf_targets_are_refused_as_status_events_and_the_answer_streams(
    start_research_app: StartApp, site: SiteServer, http: aiohttp.ClientSession
) -> None:
    # The guard is on (the default); the site's port is allowed so the address check decides.
    app = await start_research_app(research_allowed_ports=f"80,443,{site.port}", research_max_sources=20)
    research = app.services.research
    assert research is not None and isinstance(research.fetcher, SafeFetcher)
    assert research.fetcher.policy.allow_private is False
    # Name resolution for two 'public-looking' names, and 127.0.0.2 allowed for the second
    # one, so the redirect's first hop is served and the hop to 127.0.0.1 must be refused.
    research.fetcher.resolver = StaticResolver(
        {"intranet.example.com": ["127.0.0.1"], "news.example.com": ["127.0.0.2"]}
    )
    research.fetcher.policy = AddressPolicy(
        allowed_ports=frozenset({80, 443, site.port}),
        allowed_addresses=frozenset({ipaddress.ip_address("127.0.0.2")}),
    )
    p = site.port
    targets = {
        f"http://127.0.0.1:{p}/a": "private address",
        f"http://localhost:{p}/b": "private address",
        **({f"http://[::1]:{p}/c": "private address"} if HAS_IPV6 else {}),
        "http://10.1.2.3/d": "private address",
        "http://192.168.0.10/e": "private address",
        "http://169.254.169.254/latest/meta-data/": "cloud metadata address",
        f"http://0x7f000001:{p}/f": "private address",
        f"http://intranet.example.com:{p}/g": "private address",
        "file:///etc/passwd": "scheme file not allowed",
        f"gopher://127.0.0.1:{p}/_h": "scheme gopher not allowed",
        f"http://news.example.com:{p}/redirect?to=http://127.0.0.1:{p}/internal": "private address",
    }
    user = await sign_in(app, http)
    events = await stream(user, {"message": "Please read: " + " ".join(targets), "research": True})

    details = [s["detail"] for s in statuses(events)]
    for url, reason in targets.items():
        assert f"blocked: {reason} ({url})" in details, url
    # Nothing reached the site but the redirect's first, allowed hop.
    assert [(h.path, h.local_address) for h in site.hits] == [("/redirect", "127.0.0.2")]
    assert next(e.data["sources"] for e in events if e.event == "sources") == []
    # The answer still streamed, and the model was told the pages could not be read.
    assert events[-1].data["status"] == "complete"
    assert "none could be retrieved" in research_context(events)


async def test_oversized_and_endless_pages_do_not_hold_up_another_chat(
    start_research_app: StartApp, site: SiteServer, http: aiohttp.ClientSession
) -> None:
    app = await start_research_app(research_allow_private=True, research_page_timeout=5.0)
    user = await sign_in(app, http)
    big, endless = site.url("/big"), site.url("/endless")

    research_chat = asyncio.create_task(stream(user, {"message": f"about lighthouses {big} {endless}"}))
    # The research chat is reading the endless page (and has not ended some other way).
    assert await until(lambda: site._endless_writers > 0 or research_chat.done(), timeout=10)
    assert not research_chat.done()

    chat = await stream(user, {"message": "a normal question"})  # another chat, meanwhile
    assert chat[-1].data["status"] == "complete"
    assert json.loads(deltas(chat))[-1]["content"] == "a normal question"
    # The other chat ran start to finish while the endless page was still being read.
    assert site._endless_writers == 1 and not research_chat.done()

    events = await research_chat
    details = [s["detail"] for s in statuses(events)]
    assert "fetched 127.0.0.1 (cut at 2048 KiB)" in details
    assert any(d.startswith("fetched 127.0.0.1 (timeout: cut at") for d in details)
    titles = [s["title"] for s in next(e.data["sources"] for e in events if e.event == "sources")]
    assert titles == ["A Very Long Page", "Endless Stream"]
    assert events[-1].data["status"] == "complete"


async def test_searxng_results_become_sources(
    start_research_app: StartApp, site: SiteServer, http: aiohttp.ClientSession
) -> None:
    site.search_results = [
        {"url": site.url("/article/bees"), "title": "Swarm decisions", "content": "...", "engine": "wiki"},
        {"url": site.url("/article/tides"), "title": "Tides", "content": "...", "engine": "news"},
    ]
    app = await start_research_app(research_allow_private=True, searxng_url=site.url("/"))
    user = await sign_in(app, http)
    events = await stream(user, {"message": "/research how does a honeybee swarm pick its new home?"})
    assert site.search_queries == ["how does a honeybee swarm pick its new home?"]
    searching = [s for s in statuses(events) if s["stage"] == "searching"]
    assert [s["done"] for s in searching] == [False, True]
    sources = next(e.data["sources"] for e in events if e.event == "sources")
    assert [s["url"] for s in sources] == [site.url("/article/bees"), site.url("/article/tides")]
    assert "the whole cluster takes off towards its new home" in research_context(events)


async def test_auto_fetch_off_ignores_urls_unless_research_is_asked(
    start_research_app: StartApp, site: SiteServer, http: aiohttp.ClientSession
) -> None:
    app = await start_research_app(research_allow_private=True, auto_fetch_urls=False)
    user = await sign_in(app, http)
    plain = await stream(user, {"message": f"look {site.url('/article/bees')}"})
    assert not [e for e in plain if e.event in ("status", "sources")]
    assert site.hits == []
    asked = await stream(user, {"message": f"look {site.url('/article/bees')}", "research": True})
    assert [s["n"] for s in next(e.data["sources"] for e in asked if e.event == "sources")] == [1]
