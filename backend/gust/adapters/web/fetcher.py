"""The research page fetcher: aiohttp behind the SSRF guard.

Every hop of a fetch (the URL and each redirect target) is checked by the guard's URL
rules; the session's connector (adapters/web/connect.py) resolves each host once per
connection, checks every answer and connects to exactly the addresses that passed, so a
second DNS answer (DNS rebinding) can never be used. TLS still verifies the host name.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Literal

import aiohttp
from bs4.dammit import EncodingDetector
from yarl import URL

from gust.adapters.web.connect import guarded_connector, refusal
from gust.adapters.web.guard import AddressPolicy, AddressResolver, SystemResolver, parse_ip_host
from gust.ports.web import FetchedPage, FetchError

log = logging.getLogger(__name__)

TEXT_TYPES = frozenset({"text/html", "application/xhtml+xml", "text/plain"})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_USER_AGENT = "Gust-Research/1.0 (self-hosted AI chat; fetches pages a user asked it to read)"
CHUNK = 64 * 1024

def decode_body(data: bytes, charset: str | None, *, html: bool, cut: bool) -> str:
    """Decode a body: the header's charset, else a BOM, else <meta charset>, else UTF-8, else cp1252.

    No statistical guess: it would run over up to 2 MiB on the event loop."""
    data, bom_encoding = EncodingDetector.strip_byte_order_mark(data)
    candidates = [enc for enc in (charset, bom_encoding) if enc]
    if html and not candidates:
        declared = EncodingDetector.find_declared_encoding(data[:8192], is_html=True)
        if declared:
            candidates.append(declared)
    for encoding in candidates:
        try:
            # A declared charset is trusted: undecodable bytes become U+FFFD.
            return data.decode(encoding, errors="replace")
        except LookupError:
            continue
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A body cut at the size limit may end inside a multi-byte character.
        if cut and exc.start >= len(data) - 3:
            return data[: exc.start].decode("utf-8")
    return data.decode("cp1252", errors="replace")


class SafeFetcher:
    """Fetches pages for research; see the module docstring for the guarantees."""

    def __init__(
        self,
        *,
        policy: AddressPolicy | None = None,
        resolver: AddressResolver | None = None,
        page_timeout: float = 10.0,
        max_bytes: int = 2 * 1024 * 1024,
        max_redirects: int = 5,
        user_agent: str = DEFAULT_USER_AGENT,
        max_connections: int = 16,
        max_connections_per_host: int = 4,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.policy = policy or AddressPolicy()
        self.resolver: AddressResolver = resolver or SystemResolver()
        self.page_timeout = page_timeout
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self._limits = (max_connections, max_connections_per_host)
        # None: the system's trusted CAs. Certificates and host names are always verified.
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use, on the running loop.
        if self._session is None or self._session.closed:
            connector = guarded_connector(
                self.policy,
                self.resolver,
                ssl=self._ssl,
                limit=self._limits[0],
                limit_per_host=self._limits[1],
                enable_cleanup_closed=True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),  # never carry one user's cookies to another
                trust_env=False,  # a proxy from the environment would bypass the pinning
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.page_timeout),
                headers={
                    "User-Agent": self.user_agent,
                    "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1",
                },
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, url: str, *, time_limit: float | None = None) -> FetchedPage:
        """Fetch one page; raises FetchError. A body still arriving at the timeout is cut."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.page_timeout if time_limit is None else time_limit)
        try:
            current = URL(url)
        except (ValueError, TypeError) as exc:
            raise FetchError("blocked", "invalid URL") from exc
        session = self._get_session()
        redirects = 0
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    host, _port = self.policy.check_url(current)
                    literal = parse_ip_host(host)
                    if literal is not None and host != str(literal):
                        # Legacy numeric forms (0x7f000001) are sent as the address they denote.
                        current = current.with_host(str(literal))
                    try:
                        resp = await session.get(current, allow_redirects=False)
                    except (aiohttp.ClientError, OSError) as exc:
                        refused = refusal(exc)
                        if refused is not None:
                            raise refused from None
                        raise
                    if resp.status not in REDIRECT_STATUSES:
                        break
                    location = resp.headers.get("Location")
                    resp.close()  # never read a redirect's body
                    if not location:
                        raise FetchError("redirects", f"HTTP {resp.status} without Location")
                    redirects += 1
                    if redirects > self.max_redirects:
                        raise FetchError("redirects", f"more than {self.max_redirects} redirects")
                    try:
                        current = current.join(URL(location))
                    except (ValueError, TypeError) as exc:
                        raise FetchError("redirects", "invalid redirect target") from exc
        except FetchError as exc:
            if exc.kind == "blocked":
                log.info("research fetch blocked: %s (host %s)", exc.reason, current.raw_host)
            raise
        except TimeoutError as exc:
            raise FetchError("timeout", "timeout") from exc
        except aiohttp.ClientResponseError as exc:
            raise FetchError("network", f"bad response ({exc.status})") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise FetchError("network", _network_reason(exc)) from exc
        async with resp:
            return await self._read(resp, str(current), redirects, deadline)

    async def _read(
        self, resp: aiohttp.ClientResponse, url: str, redirects: int, deadline: float
    ) -> FetchedPage:
        if resp.status >= 400:
            raise FetchError("http_status", f"HTTP {resp.status}")
        content_type = resp.content_type.lower()
        if content_type not in TEXT_TYPES:
            raise FetchError("content_type", f"unsupported content type {content_type or 'none'}")
        body = bytearray()
        cut: Literal["size", "timeout"] | None = None
        try:
            async with asyncio.timeout_at(deadline):
                async for chunk in resp.content.iter_chunked(CHUNK):
                    body += chunk
                    if len(body) >= self.max_bytes:
                        del body[self.max_bytes :]
                        cut = "size"
                        break
        except TimeoutError:
            if not body:
                raise FetchError("timeout", "timeout") from None
            cut = "timeout"
        except (aiohttp.ClientError, OSError) as exc:
            if not body:
                raise FetchError("network", _network_reason(exc)) from exc
            cut = "timeout"  # the connection broke mid-body: keep what arrived
        if cut is not None:
            resp.close()  # do not drain the rest of an endless or oversized body
        text = decode_body(bytes(body), resp.charset, html=content_type in HTML_TYPES, cut=cut is not None)
        return FetchedPage(
            url=url, content_type=content_type, text=text, size=len(body), cut=cut, redirects=redirects
        )


def _network_reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS error"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connection failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return "network error"
