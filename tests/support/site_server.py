"""A real local web site for research tests: article pages, awkward pages, hostile pages.

It records every request it receives (path, the local address it arrived on, User-Agent),
so a test can prove that a refused URL never reached it. It can listen on several
loopback addresses at one port (127.0.0.1 and 127.0.0.2 are both loopback on Linux), so a
policy can allow exactly one address while a redirect points at another.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.env import bound_port

NAV = """<header class="site-header"><nav class="menu"><a href="/">Home NAVLINK</a>
<a href="/news">News NAVLINK</a><a href="/about">About NAVLINK</a></nav></header>"""
SCRIPTS = """<script>window.tracker = "SCRIPTCODE"; console.log("SCRIPTCODE");</script>
<style>body { font-family: STYLECODE; }</style>"""
FOOTER = """<aside class="sidebar">Related links SIDEBARTEXT</aside>
<footer>Copyright FOOTERTEXT. All rights reserved.</footer>"""

ARTICLES: dict[str, tuple[str, list[str]]] = {
    "tides": (
        "Tidal Power in the Bay of Fundy",
        [
            "The Bay of Fundy has the highest tides on Earth, rising as much as sixteen metres "
            "twice a day. Engineers have long wanted to harvest that energy for the grid.",
            "In 2024 a consortium installed four tidal turbines on the sea floor near Parrsboro. "
            "Each turbine produces two megawatts at peak flow, enough to power about 500 homes.",
            "Marine biologists monitor the turbines for effects on fish and porpoises; early "
            "results show little harm, though the study continues through 2027.",
        ],
    ),
    "bees": (
        "How Honeybees Choose a New Home",
        [
            "When a honeybee colony outgrows its hive, about ten thousand workers leave with the "
            "old queen and hang in a cluster from a branch while scouts search for a cavity.",
            "Scout bees dance to advertise the sites they found; the better the site, the longer "
            "the waggle dance. Over a day or two the colony converges on a single choice.",
            "The swarm decides by quorum: once about fifteen scouts gather at one site they "
            "return and pipe, and the whole cluster takes off towards its new home.",
        ],
    ),
}


def article_html(slug: str) -> str:
    title, paragraphs = ARTICLES[slug]
    body = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{title} | Example Science News</title>
<meta name="description" content="An article about {title.lower()}.">{SCRIPTS}</head>
<body>{NAV}<main><article><header><h1>{title}</h1></header>
<p class="byline">By A. Writer, 3 March 2025</p>
{body}
<script>document.write("SCRIPTCODE inline")</script>
</article></main>{FOOTER}</body></html>"""


# readability discards blocks whose class looks like comments or a sidebar, which leaves it
# nothing on this page: the text must come from the BeautifulSoup fallback.
UNREADABLE_HTML = (
    """<!doctype html><html><head><title>Community Garden Minutes</title>
<meta name="description" content="Minutes of the March meeting of the Elm Street garden.">
<script>var x = "SCRIPTCODE";</script></head><body>"""
    + NAV
    + """
<div class="comment-thread sidebar-like"><h2>Water schedule agreed</h2>
<p>The committee agreed that plots on the north side will be watered on Tuesdays and Fridays
from the rain barrels, and the south side on Wednesdays and Saturdays.</p>
<p>Volunteers will rotate the compost every second Sunday; the tool shed code changes in April.</p>
</div></body></html>"""
)

TEXT_PLAIN = """Release notes for version 2.4

The export command now writes newline-delimited JSON.
Importing a file with duplicate ids keeps the newest record.
"""


@dataclass
class Hit:
    path: str
    query: str
    local_address: str
    user_agent: str


@dataclass
class SiteServer:
    """The site. `search_results` is what /search answers in SearxNG's JSON format."""

    hosts: tuple[str, ...] = ("127.0.0.1",)
    hits: list[Hit] = field(default_factory=list)
    search_results: list[dict[str, Any]] = field(default_factory=list)
    search_queries: list[str] = field(default_factory=list)
    port: int = 0
    ssl_context: ssl.SSLContext | None = None  # serve https with this certificate
    _runner: web.AppRunner | None = None
    _endless_writers: int = 0

    def url(self, path: str = "/", host: str | None = None) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host or self.hosts[0]}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [hit.path for hit in self.hits]

    async def start(self) -> SiteServer:
        app = web.Application(middlewares=[self._record])
        routes = [
            ("/article/{slug}", self._article),
            ("/unreadable", self._unreadable),
            ("/big", self._big),
            ("/endless", self._endless),
            ("/text", self._text),
            ("/image.png", self._image),
            ("/no-type", self._no_type),
            ("/latin1", self._latin1),
            ("/redirect", self._redirect),
            ("/chain/{n}", self._chain),
            ("/missing", self._missing),
            ("/search", self._search),
        ]
        for path, handler in routes:
            app.router.add_get(path, handler)
        app.router.add_get("/{tail:.*}", self._secret)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1)
        await self._runner.setup()
        for host in self.hosts:
            site = web.TCPSite(self._runner, host, self.port, ssl_context=self.ssl_context)
            await site.start()
            if not self.port:
                self.port = bound_port(self._runner)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        self.hits.append(
            Hit(
                path=request.path,
                query=request.query_string,
                local_address=str(sockname[0]) if sockname else "",
                user_agent=request.headers.get("User-Agent", ""),
            )
        )
        response: web.StreamResponse = await handler(request)
        return response

    async def _article(self, request: web.Request) -> web.Response:
        slug = request.match_info["slug"]
        if slug not in ARTICLES:
            raise web.HTTPNotFound()
        return web.Response(text=article_html(slug), content_type="text/html")

    async def _unreadable(self, request: web.Request) -> web.Response:
        return web.Response(text=UNREADABLE_HTML, content_type="text/html")

    async def _big(self, request: web.Request) -> web.StreamResponse:
        """3 MiB of article paragraphs, streamed in 64 KiB writes."""
        resp = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
        await resp.prepare(request)
        await resp.write(b"<html><head><title>A Very Long Page</title></head><body><article>")
        para = (
            "<p>" + "Lighthouses guided ships along the rocky coast for centuries. " * 20 + "</p>\n"
        ).encode()
        sent = 0
        while sent < 3 * 1024 * 1024:
            chunk = para * (64 * 1024 // len(para) + 1)
            await resp.write(chunk)
            sent += len(chunk)
        await resp.write(b"<p>THE-END-MARKER</p></article></body></html>")
        return resp

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        """A page that never ends: a paragraph every 50 ms, forever."""
        resp = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
        await resp.prepare(request)
        await resp.write(b"<html><head><title>Endless Stream</title></head><body><article>")
        self._endless_writers += 1
        try:
            n = 0
            while True:
                n += 1
                await resp.write(f"<p>Paragraph {n} of the endless page about slow rivers.</p>\n".encode())
                await asyncio.sleep(0.05)
        finally:
            self._endless_writers -= 1

    async def _text(self, request: web.Request) -> web.Response:
        return web.Response(text=TEXT_PLAIN, content_type="text/plain")

    async def _image(self, request: web.Request) -> web.Response:
        return web.Response(body=b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, content_type="image/png")

    async def _no_type(self, request: web.Request) -> web.Response:
        resp = web.Response(body=b"<p>no content type</p>")
        resp.headers.popall("Content-Type", None)
        return resp

    async def _latin1(self, request: web.Request) -> web.Response:
        # No charset in the header: the <meta> declares it.
        html = (
            '<html><head><meta charset="iso-8859-1"><title>Caf\xe9 cr\xe8me</title></head>'
            "<body><article><p>"
            + "Le caf\xe9 cr\xe8me co\xfbte deux euros \xe0 Paris. " * 12
            + "</p></article></body></html>"
        )
        return web.Response(body=html.encode("iso-8859-1"), headers={"Content-Type": "text/html"})

    async def _redirect(self, request: web.Request) -> web.Response:
        """302 to ?to=<url> (any URL, any scheme)."""
        raise web.HTTPFound(location=request.query["to"])

    async def _chain(self, request: web.Request) -> web.Response:
        """/chain/N redirects N times (relative Locations), then serves an article."""
        n = int(request.match_info["n"])
        if n <= 0:
            raise web.HTTPFound(location="/article/bees")
        raise web.HTTPFound(location=f"/chain/{n - 1}")

    async def _missing(self, request: web.Request) -> web.Response:
        raise web.HTTPNotFound(text="gone")

    async def _search(self, request: web.Request) -> web.Response:
        """SearxNG's /search?q=...&format=json."""
        self.search_queries.append(request.query.get("q", ""))
        if request.query.get("format") != "json":
            raise web.HTTPForbidden()
        body = {
            "query": request.query.get("q", ""),
            "number_of_results": len(self.search_results),
            "results": self.search_results,
            "answers": [],
            "corrections": [],
            "infoboxes": [],
            "suggestions": [],
            "unresponsive_engines": [],
        }
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def _secret(self, request: web.Request) -> web.Response:
        """Anything else: the 'internal' target SSRF tests must never reach."""
        return web.Response(text="<html><body><p>INTERNAL SECRET</p></body></html>", content_type="text/html")
