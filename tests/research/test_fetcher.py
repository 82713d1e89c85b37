"""The fetcher against a real local site: content rules, limits, redirects, charset."""

from __future__ import annotations

import asyncio
import ipaddress

import aiohttp
import pytest

from gust.adapters.web.connect import refusal
from gust.adapters.web.fetcher import DEFAULT_USER_AGENT, SafeFetcher
from gust.adapters.web.guard import AddressPolicy
from gust.ports.web import FetchError
from tests.research.conftest import StaticResolver
from tests.support.site_server import SiteServer
from tests.support.wait import until

MiB = 1024 * 1024


def open_fetcher(**kw: object) -> SafeFetcher:
    """A fetcher as RESEARCH_ALLOW_PRIVATE=true builds it: the site is on loopback."""
    kw.setdefault("policy", AddressPolicy(allow_private=True))
    return SafeFetcher(**kw)  # type: ignore[arg-type]


async def test_fetches_an_html_page_with_a_descriptive_user_agent(site: SiteServer) -> None:
    fetcher = open_fetcher()
    try:
        page = await fetcher.fetch(site.url("/article/tides"))
    finally:
        await fetcher.close()
    assert page.content_type == "text/html"
    assert "Parrsboro" in page.text
    assert page.cut is None and page.redirects == 0
    assert site.hits[-1].user_agent == DEFAULT_USER_AGENT
    assert "Gust" in DEFAULT_USER_AGENT


async def test_text_plain_is_accepted(site: SiteServer) -> None:
    fetcher = open_fetcher()
    try:
        page = await fetcher.fetch(site.url("/text"))
    finally:
        await fetcher.close()
    assert page.content_type == "text/plain"
    assert "newline-delimited JSON" in page.text


@pytest.mark.parametrize(
    ("path", "kind", "reason"),
    [
        ("/image.png", "content_type", "unsupported content type image/png"),
        ("/no-type", "content_type", "unsupported content type application/octet-stream"),
        ("/missing", "http_status", "HTTP 404"),
    ],
)
async def test_refused_answers(site: SiteServer, path: str, kind: str, reason: str) -> None:
    fetcher = open_fetcher()
    try:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(site.url(path))
    finally:
        await fetcher.close()
    assert (info.value.kind, info.value.reason) == (kind, reason)


async def test_charset_from_meta_when_the_header_has_none(site: SiteServer) -> None:
    fetcher = open_fetcher()
    try:
        page = await fetcher.fetch(site.url("/latin1"))
    finally:
        await fetcher.close()
    assert "Café crème coûte deux euros à Paris" not in page.text  # different case in the page
    assert "Le café crème coûte deux euros à Paris" in page.text


async def test_redirects_followed_up_to_five(site: SiteServer) -> None:
    fetcher = open_fetcher()
    try:
        page = await fetcher.fetch(site.url("/chain/4"))
        assert page.redirects == 5
        assert page.url == site.url("/article/bees")
        assert "waggle dance" in page.text
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(site.url("/chain/5"))
    finally:
        await fetcher.close()
    assert info.value.kind == "redirects"
    # /chain/5 .. /chain/0 answered six redirects; the sixth was not followed.
    assert site.paths()[-6:] == [f"/chain/{n}" for n in range(5, -1, -1)]


async def test_oversized_page_is_cut_at_the_limit(site: SiteServer) -> None:
    fetcher = open_fetcher()  # default limit: 2 MiB
    try:
        page = await fetcher.fetch(site.url("/big"))
    finally:
        await fetcher.close()
    assert page.cut == "size"
    assert page.size == 2 * MiB
    assert len(page.text.encode()) == 2 * MiB
    assert "Lighthouses guided ships" in page.text
    assert "THE-END-MARKER" not in page.text


async def test_smaller_limit_is_honoured(site: SiteServer) -> None:
    fetcher = open_fetcher(max_bytes=10_000)
    try:
        page = await fetcher.fetch(site.url("/big"))
    finally:
        await fetcher.close()
    assert (page.cut, page.size) == ("size", 10_000)


async def test_endless_page_is_cut_at_the_timeout_while_the_loop_keeps_running(site: SiteServer) -> None:
    fetcher = open_fetcher()
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        page = await fetcher.fetch(site.url("/endless"), time_limit=1.0)
    finally:
        stop.set()
        await task
        await fetcher.close()
    assert page.cut == "timeout"
    assert "Paragraph 1 of the endless page" in page.text
    # 1 s of 10 ms ticks is ~100; a loop blocked by the fetch would manage one or two.
    assert ticks >= 25, ticks
    # The fetcher hung up: the endless handler on the server stops writing.
    assert await until(lambda: site._endless_writers == 0, timeout=5)


async def test_nothing_before_the_timeout_is_a_timeout_error(site: SiteServer) -> None:
    """A server that accepts but never answers headers."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        await asyncio.sleep(30)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fetcher = open_fetcher()
    try:
        with pytest.raises(FetchError) as info:
            await fetcher.fetch(f"http://127.0.0.1:{port}/", time_limit=0.5)
    finally:
        await fetcher.close()
        server.close()
    assert info.value.kind == "timeout"


async def test_connects_only_to_the_checked_address_dns_rebinding(site: SiteServer) -> None:
    """The name answers 127.0.0.2 (allowed) first and 127.0.0.1 (refused) afterwards: the
    fetch resolves once and connects to the checked address, never to a second answer."""
    resolver = StaticResolver({"rebind.example": ["127.0.0.2"]}, then={"rebind.example": ["127.0.0.1"]})
    policy = AddressPolicy(
        allowed_ports=frozenset({site.port}), allowed_addresses=frozenset({ipaddress.ip_address("127.0.0.2")})
    )
    fetcher = SafeFetcher(policy=policy, resolver=resolver)
    try:
        page = await fetcher.fetch(site.url("/article/bees", host="rebind.example"))
    finally:
        await fetcher.close()
    assert "waggle dance" in page.text
    assert resolver.calls == ["rebind.example"]
    assert [(h.path, h.local_address) for h in site.hits] == [("/article/bees", "127.0.0.2")]


async def test_concurrent_fetches_keep_their_own_pinned_addresses(site: SiteServer) -> None:
    resolver = StaticResolver({"one.example": ["127.0.0.1"], "two.example": ["127.0.0.2"]})
    fetcher = open_fetcher(resolver=resolver)
    try:
        await asyncio.gather(
            *(
                fetcher.fetch(site.url(f"/article/{slug}", host=name))
                for _ in range(5)
                for name, slug in (("one.example", "tides"), ("two.example", "bees"))
            )
        )
    finally:
        await fetcher.close()
    assert {(h.path, h.local_address) for h in site.hits} == {
        ("/article/tides", "127.0.0.1"),
        ("/article/bees", "127.0.0.2"),
    }


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "0x7f000001", "[::ffff:127.0.0.1]"])
async def test_the_session_itself_never_connects_to_a_refused_address(site: SiteServer, host: str) -> None:
    """Below fetch()'s URL checks, the session's connector checks every address it connects
    to (literal hosts included, which aiohttp never passes to a resolver)."""
    fetcher = SafeFetcher(policy=AddressPolicy(allowed_ports=frozenset({site.port})))
    try:
        with pytest.raises(aiohttp.ClientConnectorError) as info:
            async with fetcher._get_session().get(f"http://{host}:{site.port}/article/bees"):
                pass
    finally:
        await fetcher.close()
    refused = refusal(info.value)
    assert refused is not None and (refused.kind, refused.reason) == ("blocked", "private address")
    assert site.hits == []
