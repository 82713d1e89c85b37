"""The web ports of research: fetch a page safely, extract its text, search the web."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

FetchFailure = Literal[
    "blocked",  # refused by the SSRF guard: scheme, credentials, port or address
    "dns",  # the host name does not resolve
    "timeout",  # no usable answer within the page timeout
    "http_status",  # the server answered 4xx/5xx
    "content_type",  # not text/html, application/xhtml+xml or text/plain
    "redirects",  # more redirects than allowed, or a redirect without a usable Location
    "network",  # connection refused/reset, TLS failure, malformed response
]


class FetchError(Exception):
    """A page could not be fetched; `reason` is short human text for a status line."""

    def __init__(self, kind: FetchFailure, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind: FetchFailure = kind
        self.reason = reason


@dataclass(slots=True)
class FetchedPage:
    """A fetched body, decoded. `cut` says why it stops early: the size limit or the timeout."""

    url: str  # the final URL, after redirects
    content_type: str  # the media type, without parameters
    text: str
    size: int  # bytes of body read
    cut: Literal["size", "timeout"] | None = None
    redirects: int = 0


class PageFetcher(Protocol):
    """Fetches http(s) pages for users: every address it connects to has passed its guard."""

    async def fetch(self, url: str, *, time_limit: float | None = None) -> FetchedPage:
        """Fetch one page within `time_limit` seconds (default: the fetcher's page timeout).

        Raises FetchError; a body that is still arriving at the time limit is returned cut
        (which is why this is a parameter and not the caller's asyncio.timeout)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class UrlGuard(Protocol):
    """The SSRF guard as a service sees it when a user configures a URL (an agent's webhook)."""

    async def check_target(self, url: str) -> None:
        """Raise FetchError("blocked", reason) when the URL may never be fetched."""
        ...


@dataclass(slots=True)
class ExtractedText:
    """The readable text of a page: paragraphs separated by blank lines."""

    title: str | None
    text: str
    method: Literal["readability", "fallback", "plain"]


class TextExtractor(Protocol):
    """Turns a fetched body into its main text. CPU-bound: call it on a worker thread."""

    def extract(self, body: str, *, url: str, content_type: str, max_chars: int) -> ExtractedText: ...


@dataclass(slots=True)
class SearchHit:
    url: str
    title: str
    snippet: str = ""


class SearchError(Exception):
    """The web search failed; the message is short human text for a status line."""


class SearchNotConfigured(SearchError):
    """No web search engine is configured (SEARXNG_URL is unset)."""


class WebSearch(Protocol):
    """A web search engine that returns candidate pages for a question."""

    # False for NoWebSearch: research then uses only the URLs in the message.
    configured: bool

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """Top results for `query`; raises SearchError. Callers bound it with asyncio.timeout."""
        ...

    async def close(self) -> None: ...


class NoWebSearch:
    """The web search when none is configured: every search raises SearchNotConfigured."""

    configured = False

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        raise SearchNotConfigured("no web search configured (SEARXNG_URL)")

    async def close(self) -> None:
        return None
