"""A SearxNG client (its JSON API): web search results become candidate research sources.

SEARXNG_URL is the operator's own instance, so it is reached directly (often on the
intranet); the result URLs it returns go through the fetcher's SSRF guard like any other.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import aiohttp
from yarl import URL

from gust.ports.web import SearchError, SearchHit

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class SearxClient:
    """GET {SEARXNG_URL}/search?q=...&format=json (the instance must enable the json format)."""

    configured = True

    def __init__(self, base_url: str, *, user_agent: str, connect_timeout: float = 5.0) -> None:
        self.endpoint = URL(base_url.rstrip("/") + "/search")
        self.user_agent = user_agent
        self.connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": self.user_agent, "Accept": "application/json"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def search(self, query: str, *, limit: int) -> list[SearchHit]:
        """The first `limit` http(s) results for `query`; raises SearchError."""
        params = {"q": query, "format": "json", "safesearch": "1"}
        try:
            async with self._get_session().get(self.endpoint, params=params) as resp:
                if resp.status != 200:
                    raise SearchError(f"search engine answered HTTP {resp.status}")
                raw = await resp.content.read(MAX_RESPONSE_BYTES + 1)
                if len(raw) > MAX_RESPONSE_BYTES:
                    raise SearchError("search engine answer too large")
                try:
                    payload = json.loads(raw)
                except ValueError as exc:
                    raise SearchError("search engine answered something other than JSON") from exc
        except (aiohttp.ClientError, OSError) as exc:
            log.warning("SearxNG search failed: %s", type(exc).__name__)
            raise SearchError("search engine unreachable") from exc
        return hits_from(payload, limit)


def hits_from(payload: Any, limit: int) -> list[SearchHit]:
    """SearxNG's {"results": [{"url", "title", "content"}, ...]} as SearchHits, deduplicated."""
    results = payload.get("results") if isinstance(payload, dict) else None
    if not isinstance(results, list):
        raise SearchError("search engine answer has no results list")
    hits: list[SearchHit] = []
    seen: set[str] = set()
    for item in results:
        if not isinstance(item, dict):
            continue
        url = item.get("url")
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")) or url in seen:
            continue
        seen.add(url)
        title = item.get("title") if isinstance(item.get("title"), str) else ""
        snippet = item.get("content") if isinstance(item.get("content"), str) else ""
        hits.append(SearchHit(url=url, title=" ".join(str(title).split()), snippet=str(snippet)))
        if len(hits) >= limit:
            break
    return hits
