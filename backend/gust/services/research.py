"""Research mode: read the pages a message names (and web search results), cite them.

The generation job calls `prepare()` before the LLM call: it fetches the sources through
the SSRF-safe fetcher, extracts their text on worker threads, ranks passages against the
question and returns a numbered context block for the prompt. Progress and per-source
failures go to `emit` as stream `status` events.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gust.domain.events import StatusEvent
from gust.domain.events import status_event as _status
from gust.ports.web import (
    ExtractedText,
    FetchedPage,
    FetchError,
    PageFetcher,
    SearchError,
    TextExtractor,
    WebSearch,
)
from gust.services.research_rank import SourceText, build_context

log = logging.getLogger(__name__)

Emit = Callable[[StatusEvent], Awaitable[None]]

RESEARCH_COMMAND = "/research"
_URL = re.compile(r"https?://[^\s<>\"'`\x00-\x1f\x7f]+", re.IGNORECASE)
# URLs of any scheme: the ones that are not http(s) are shown as refused, never fetched.
_ANY_SCHEME_URL = re.compile(r"(?<![\w.+-])[a-z][a-z0-9+.-]{1,20}://[^\s<>\"'`\x00-\x1f\x7f]*", re.IGNORECASE)
_TRAILING = ".,;:!?'\"*_~"
_CLOSERS = {")": "(", "]": "[", "}": "{"}
MAX_DETAIL_URL = 120
MAX_QUERY_CHARS = 400


@dataclass(frozen=True, slots=True)
class ResearchOptions:
    """Research settings (see config.Settings: AUTO_FETCH_URLS, RESEARCH_*)."""

    auto_fetch_urls: bool = True
    max_sources: int = 5
    page_timeout: float = 10.0
    total_budget: float = 30.0
    context_tokens: int = 3000
    max_chars_per_source: int = 20_000
    concurrency: int = 4


@dataclass(slots=True)
class ResearchResult:
    """What the prompt gets: `context` as a system message; `sources` for the `sources` event
    and the assistant message ([{n, url, title}], only sources that yielded text)."""

    context: str
    sources: list[dict[str, Any]]
    failures: list[dict[str, str]] = field(default_factory=list)  # [{url, reason}]


@dataclass(slots=True)
class _Candidate:
    url: str
    title: str = ""
    page: FetchedPage | None = None
    text: ExtractedText | None = None
    failure: str | None = None


def _trim_url(url: str) -> str:
    """Drop sentence punctuation and unbalanced closing brackets from the end of a URL."""
    while url:
        last = url[-1]
        if last in _TRAILING:
            url = url[:-1]
        elif last in _CLOSERS and url.count(last) > url.count(_CLOSERS[last]):
            url = url[:-1]
        else:
            break
    return url


def _without_fragment(url: str) -> str:
    return url.split("#", 1)[0]


def display_url(url: str) -> str:
    """A URL for a status line: never its credentials, never unboundedly long."""
    try:
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None:
            netloc = "…@" + parts.netloc.rsplit("@", 1)[1]
            url = urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        pass
    return url if len(url) <= MAX_DETAIL_URL else url[: MAX_DETAIL_URL - 1] + "…"


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or display_url(url)
    except ValueError:
        return display_url(url)


def is_research_command(text: str) -> bool:
    """True for a message starting with `/research` (then whitespace or nothing)."""
    head = text.lstrip()
    return head[: len(RESEARCH_COMMAND)].lower() == RESEARCH_COMMAND and (
        len(head) == len(RESEARCH_COMMAND) or head[len(RESEARCH_COMMAND)].isspace()
    )


def strip_command(text: str) -> str:
    """The message without its leading `/research` command."""
    return text.lstrip()[len(RESEARCH_COMMAND) :].strip() if is_research_command(text) else text


def _failure_detail(exc: FetchError) -> str:
    if exc.kind == "blocked":
        return f"blocked: {exc.reason}"
    return exc.reason


class ResearchService:
    """Finds, fetches, extracts and ranks web sources for one question."""

    def __init__(
        self,
        fetcher: PageFetcher,
        extractor: TextExtractor,
        search: WebSearch | None = None,
        options: ResearchOptions | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.extractor = extractor
        self.search = search
        self.options = options or ResearchOptions()

    async def close(self) -> None:
        await self.fetcher.close()
        if self.search is not None:
            await self.search.close()

    # -- triggers ----------------------------------------------------------------
    def urls_in(self, text: str) -> list[str]:
        """The http(s) URLs of a message, in order, deduplicated, at most max_sources."""
        urls: list[str] = []
        for match in _URL.finditer(text):
            url = _without_fragment(_trim_url(match.group(0)))
            if len(url) > len("https://") and url not in urls:
                urls.append(url)
                if len(urls) >= self.options.max_sources:
                    break
        return urls

    def _other_scheme_urls(self, text: str) -> list[str]:
        found: list[str] = []
        for match in _ANY_SCHEME_URL.finditer(text):
            url = _trim_url(match.group(0))
            if not url.lower().startswith(("http://", "https://")) and url not in found:
                found.append(url)
        return found[: self.options.max_sources]

    def wants_research(self, text: str, research_flag: bool) -> bool:
        """Research runs for the flag, a `/research` message, or URLs when AUTO_FETCH_URLS is on."""
        if research_flag or is_research_command(text):
            return True
        return self.options.auto_fetch_urls and bool(self.urls_in(text))

    # -- the research run --------------------------------------------------------
    async def prepare(
        self,
        question: str,
        *,
        research_flag: bool,
        emit: Emit,
        context_tokens: int | None = None,
    ) -> ResearchResult | None:
        """Gather sources for `question` and build the prompt context; None when the message
        does not call for research or there is nothing to read."""
        if not self.wants_research(question, research_flag):
            return None
        explicit = research_flag or is_research_command(question)
        text = strip_command(question)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.total_budget

        candidates = [_Candidate(url) for url in self.urls_in(text)]
        if explicit or candidates:
            # file://, gopher://... go through the guard too, which refuses them visibly.
            candidates += [_Candidate(url) for url in self._other_scheme_urls(text)]
        if explicit and self.search is not None and len(self.urls_in(text)) < self.options.max_sources:
            candidates += await self._search(text, emit, deadline)
        if not candidates:
            if explicit:
                await emit(_status("searching", "no URL in the message and no web search configured", True))
            return None

        await self._fetch_all(candidates, emit, deadline)
        await self._extract_all(candidates, emit)

        await emit(_status("ranking", "ranking passages", False))
        sources = [
            SourceText(url=c.page.url if c.page else c.url, title=self._title(c), text=c.text.text)
            for c in candidates
            if c.text is not None
        ]
        failures = [(display_url(c.url), c.failure) for c in candidates if c.failure]
        built = await asyncio.to_thread(
            build_context,
            text,
            sources,
            budget_tokens=min(context_tokens or self.options.context_tokens, self.options.context_tokens),
            failures=failures,
        )
        await emit(_status("ranking", f"{len(built.sources)} sources in context", True))
        return ResearchResult(
            context=built.context,
            sources=built.sources,
            failures=[{"url": url, "reason": reason} for url, reason in failures],
        )

    async def _search(self, text: str, emit: Emit, deadline: float) -> list[_Candidate]:
        if self.search is None:
            return []
        query = " ".join(_URL.sub(" ", text).split())[:MAX_QUERY_CHARS]
        if not query:
            return []
        await emit(_status("searching", "searching the web", False))
        limit = self.options.max_sources - len(self.urls_in(text))
        remaining = deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(min(self.options.page_timeout, remaining)):
                hits = await self.search.search(query, limit=limit)
        except SearchError as exc:
            await emit(_status("searching", f"search failed: {exc}", True))
            return []
        except TimeoutError:
            await emit(_status("searching", "search failed: timeout", True))
            return []
        await emit(_status("searching", f"{len(hits)} results", True))
        known = set(self.urls_in(text))
        return [_Candidate(hit.url, hit.title) for hit in hits if hit.url not in known]

    async def _fetch_all(self, candidates: list[_Candidate], emit: Emit, deadline: float) -> None:
        gate = asyncio.Semaphore(self.options.concurrency)

        async def fetch_one(candidate: _Candidate) -> None:
            async with gate:
                await self._fetch(candidate, emit, deadline)

        try:
            async with asyncio.TaskGroup() as group:
                for candidate in candidates:
                    group.create_task(fetch_one(candidate))
        except ExceptionGroup as group_error:  # callers expect the error itself
            raise group_error.exceptions[0] from group_error
        fetched = sum(1 for c in candidates if c.page is not None)
        await emit(_status("fetching", f"{fetched} of {len(candidates)} pages fetched", True))

    async def _fetch(self, candidate: _Candidate, emit: Emit, deadline: float) -> None:
        shown = display_url(candidate.url)
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            candidate.failure = "skipped: research time budget used up"
            await emit(_status("fetching", f"{candidate.failure} ({shown})", True))
            return
        await emit(_status("fetching", f"fetching {_host(candidate.url)}", False))
        try:
            page = await self.fetcher.fetch(
                candidate.url, time_limit=min(self.options.page_timeout, remaining)
            )
        except FetchError as exc:
            candidate.failure = _failure_detail(exc)
            await emit(_status("fetching", f"{candidate.failure} ({shown})", True))
            return
        except Exception:  # a fetcher bug on one page must not end the answer
            log.warning("research fetch failed unexpectedly for %s", _host(candidate.url), exc_info=True)
            candidate.failure = "fetch failed"
            await emit(_status("fetching", f"{candidate.failure} ({shown})", True))
            return
        candidate.page = page
        note = ""
        if page.cut == "size":
            note = f" (cut at {page.size // 1024} KiB)"
        elif page.cut == "timeout":
            note = f" (timeout: cut at {page.size // 1024} KiB)"
        await emit(_status("fetching", f"fetched {_host(page.url)}{note}", True))

    async def _extract_all(self, candidates: list[_Candidate], emit: Emit) -> None:
        pages = [c for c in candidates if c.page is not None]
        if not pages:
            return
        await emit(_status("extracting", f"extracting text from {len(pages)} pages", False))

        async def extract_one(candidate: _Candidate, page: FetchedPage) -> None:
            try:
                extracted = await asyncio.to_thread(
                    self.extractor.extract,
                    page.text,
                    url=page.url,
                    content_type=page.content_type,
                    max_chars=self.options.max_chars_per_source,
                )
            except Exception:  # a parser crash on one hostile page must not end the answer
                log.warning("text extraction failed for a page of %s", _host(page.url), exc_info=True)
                candidate.failure = "could not extract text"
                return
            if not extracted.text.strip():
                candidate.failure = "no readable text"
                return
            candidate.text = extracted

        await asyncio.gather(*(extract_one(c, c.page) for c in pages if c.page is not None))
        for candidate in pages:
            if candidate.failure:
                await emit(_status("extracting", f"{candidate.failure} ({display_url(candidate.url)})", True))
        done = sum(1 for c in pages if c.text is not None)
        await emit(_status("extracting", f"{done} of {len(pages)} pages yielded text", True))

    @staticmethod
    def _title(candidate: _Candidate) -> str:
        if candidate.text is not None and candidate.text.title:
            return candidate.text.title
        if candidate.title:
            return candidate.title
        url = candidate.page.url if candidate.page else candidate.url
        parts = urlsplit(url)
        return (parts.hostname or "") + (parts.path if parts.path not in ("", "/") else "")
