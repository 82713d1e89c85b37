"""Built-in tools: `current_time`, `fetch_url` and `web_search`.

fetch_url reads a page through the research fetcher, so through the one SSRF guard
(adapters/web/connect.py: every address checked at connect time, redirects included) and
the same text extractor; web_search asks SearxNG as research does. Each exists only when
its port is given (no SEARXNG_URL: no web_search).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gust.ports.tools import ToolResult, ToolSpec
from gust.ports.web import FetchError, PageFetcher, SearchError, TextExtractor, WebSearch

log = logging.getLogger(__name__)

MAX_URL_CHARS = 2048
MAX_QUERY_CHARS = 400
MAX_SEARCH_RESULTS = 10

CURRENT_TIME = ToolSpec(
    name="current_time",
    description="The current date and time, in UTC or in an IANA time zone such as Europe/Paris.",
    parameters={
        "type": "object",
        "properties": {"timezone": {"type": "string", "description": "IANA time zone name (default UTC)"}},
    },
)
FETCH_URL = ToolSpec(
    name="fetch_url",
    description="Read a web page (http or https) and return its main text.",
    parameters={
        "type": "object",
        "properties": {"url": {"type": "string", "description": "The page's absolute http(s) URL"}},
        "required": ["url"],
    },
)
WEB_SEARCH = ToolSpec(
    name="web_search",
    description="Search the web; returns titles, URLs and snippets of the top results.",
    parameters={
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to search for"},
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_SEARCH_RESULTS},
        },
        "required": ["query"],
    },
)


def _text_argument(arguments: dict[str, Any], key: str, limit: int) -> str | ToolResult:
    value = arguments.get(key)
    if not isinstance(value, str) or not value.strip():
        return ToolResult(False, f"'{key}' must be a non-empty string")
    if len(value) > limit:
        return ToolResult(False, f"'{key}' is longer than {limit} characters")
    return value.strip()


class BuiltinTools:
    """The built-in tools as one provider (ports.tools.ToolProvider)."""

    def __init__(
        self,
        *,
        fetcher: PageFetcher | None = None,
        extractor: TextExtractor | None = None,
        search: WebSearch | None = None,
        page_chars: int = 20_000,
        search_results: int = 5,
    ) -> None:
        self.fetcher = fetcher
        self.extractor = extractor
        self.search = search
        self.page_chars = page_chars
        self.search_results = search_results

    async def list_tools(self) -> list[ToolSpec]:
        tools = [CURRENT_TIME]
        if self.fetcher is not None and self.extractor is not None:
            tools.append(FETCH_URL)
        if self.search is not None:
            tools.append(WEB_SEARCH)
        return tools

    def owns(self, name: str) -> bool:
        return name in (CURRENT_TIME.name, FETCH_URL.name, WEB_SEARCH.name)

    async def call(self, name: str, arguments: dict[str, Any], time_limit: float) -> ToolResult:
        if name == CURRENT_TIME.name:
            return current_time(arguments)
        if name == FETCH_URL.name and self.fetcher is not None and self.extractor is not None:
            return await self._fetch_url(self.fetcher, self.extractor, arguments, time_limit)
        if name == WEB_SEARCH.name and self.search is not None:
            return await self._web_search(self.search, arguments, time_limit)
        return ToolResult(False, f"unknown tool '{name[:100]}'")

    async def close(self) -> None:
        return None  # the fetcher and the search client belong to research's owner

    async def _fetch_url(
        self, fetcher: PageFetcher, extractor: TextExtractor, arguments: dict[str, Any], time_limit: float
    ) -> ToolResult:
        url = _text_argument(arguments, "url", MAX_URL_CHARS)
        if isinstance(url, ToolResult):
            return url
        started = time.monotonic()
        try:
            page = await fetcher.fetch(url, time_limit=time_limit)
        except FetchError as exc:
            if exc.kind == "blocked":
                return ToolResult(False, f"refused to fetch this URL: {exc.reason}")
            return ToolResult(False, f"could not fetch the page: {exc.reason}")
        remaining = max(0.1, time_limit - (time.monotonic() - started))
        try:
            async with asyncio.timeout(remaining):
                extracted = await asyncio.to_thread(
                    extractor.extract,
                    page.text,
                    url=page.url,
                    content_type=page.content_type,
                    max_chars=self.page_chars,
                )
        except TimeoutError:
            return ToolResult(False, "reading the page's text took too long")
        except Exception:
            log.warning("text extraction failed for a fetched page", exc_info=True)
            return ToolResult(False, "could not extract the page's text")
        if not extracted.text.strip():
            return ToolResult(False, "the page has no readable text")
        head = f"Title: {extracted.title}\n" if extracted.title else ""
        note = " (the page was cut at the size or time limit)" if page.cut else ""
        return ToolResult(True, f"{head}URL: {page.url}{note}\n\n{extracted.text}")

    async def _web_search(
        self, search: WebSearch, arguments: dict[str, Any], time_limit: float
    ) -> ToolResult:
        query = _text_argument(arguments, "query", MAX_QUERY_CHARS)
        if isinstance(query, ToolResult):
            return query
        limit = arguments.get("limit", self.search_results)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_SEARCH_RESULTS:
            return ToolResult(False, f"'limit' must be an integer from 1 to {MAX_SEARCH_RESULTS}")
        try:
            async with asyncio.timeout(time_limit):
                hits = await search.search(query, limit=limit)
        except TimeoutError:
            return ToolResult(False, f"the search engine did not answer within {time_limit:g} s")
        except SearchError as exc:
            return ToolResult(False, f"the web search failed: {exc}")
        if not hits:
            return ToolResult(True, "No results.")
        lines = []
        for n, hit in enumerate(hits[:limit], 1):
            lines.append(f"{n}. {hit.title or hit.url}\n   {hit.url}")
            if hit.snippet:
                lines.append(f"   {hit.snippet}")
        return ToolResult(True, "\n".join(lines))


def current_time(arguments: dict[str, Any]) -> ToolResult:
    """Now, in the time zone asked for (default UTC)."""
    zone_name = arguments.get("timezone") or "UTC"
    if not isinstance(zone_name, str) or len(zone_name) > 64:
        return ToolResult(False, "'timezone' must be an IANA time zone name such as Europe/Paris")
    try:
        zone = UTC if zone_name.upper() == "UTC" else ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        return ToolResult(False, f"unknown time zone '{zone_name}'")
    now = datetime.now(zone)
    return ToolResult(True, f"{now.isoformat(timespec='seconds')} ({now:%A}, {zone_name})")
