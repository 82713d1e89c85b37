"""Browser defences and proxy awareness: the request's real scheme and client address
(X-Forwarded-* believed only from TRUSTED_PROXIES), CORS for configured origins, and CSRF
checks (Origin plus a double-submit token) for cookie-authenticated unsafe requests."""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tornado.httputil import HTTPServerRequest

from gust.domain.errors import Forbidden

if TYPE_CHECKING:
    from gust.config import Settings

ACCESS_COOKIE = "gust_access"
REFRESH_COOKIE = "gust_refresh"
CSRF_COOKIE = "gust_csrf"
CSRF_HEADER = "X-CSRF-Token"
REFRESH_COOKIE_PATH = "/api/auth"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CORS_ALLOW_HEADERS = "Authorization, Content-Type, Last-Event-ID, X-CSRF-Token, X-Request-ID"
CORS_EXPOSE_HEADERS = "Retry-After, X-Request-ID"
HSTS = "max-age=31536000; includeSubDomains"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _is_trusted(address: str | None, trusted: tuple[str, ...]) -> bool:
    if not address or not trusted:
        return False
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in _networks(trusted))


def is_trusted(address: str | None, trusted: tuple[str, ...]) -> bool:
    """Whether `address` is one of TRUSTED_PROXIES (IPs or networks)."""
    return _is_trusted(address, trusted)


def request_scheme(request: HTTPServerRequest, trusted: tuple[str, ...]) -> str:
    """`https` or `http` as the client sees it; X-Forwarded-Proto counts only from a trusted proxy."""
    if _is_trusted(request.remote_ip, trusted):
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        if forwarded in ("http", "https"):
            return forwarded
    return request.protocol


def secure_transport(request: HTTPServerRequest, settings: Settings) -> bool:
    """True when users reach Gust over https: PUBLIC_URL says so (whatever scheme a proxy in
    front forwards), or the request itself came over https. Cookies get `Secure`, answers HSTS."""
    if settings.public_url and settings.public_url.lower().startswith("https://"):
        return True
    return request_scheme(request, settings.trusted_proxies) == "https"


def client_ip(request: HTTPServerRequest, trusted: tuple[str, ...]) -> str:
    """The client's address: the right-most X-Forwarded-For hop that is not a trusted proxy."""
    address = request.remote_ip or "unknown"
    if not _is_trusted(address, trusted):
        return address
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, trusted):
            return hop
    return hops[0] if hops else address


def origin_of(url: str | None) -> str | None:
    """`scheme://host[:port]` of a URL, as browsers write Origin (default ports dropped)."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def own_origin(request: HTTPServerRequest, settings: Settings) -> str | None:
    """This server's origin: PUBLIC_URL's, or the one the request was addressed to."""
    if settings.public_url:
        return origin_of(settings.public_url)
    return origin_of(f"{request_scheme(request, settings.trusted_proxies)}://{request.host}")


def cors_origin(request: HTTPServerRequest, settings: Settings) -> str | None:
    """The request's Origin when it is one of CORS_ORIGINS (answered with CORS headers)."""
    origin = origin_of(request.headers.get("Origin"))
    return origin if origin and origin in settings.cors_origins else None


def allowed_origins(request: HTTPServerRequest, settings: Settings) -> set[str]:
    origins = set(settings.cors_origins)
    own = own_origin(request, settings)
    if own:
        origins.add(own)
    return origins


def check_origin(request: HTTPServerRequest, settings: Settings) -> None:
    """Refuse an unsafe request a browser sent from a foreign page (login CSRF included)."""
    raw = request.headers.get("Origin") or request.headers.get("Referer")
    if raw is None:
        return  # not a browser, or a browser that sends neither on same-origin requests
    origin = origin_of(raw)
    if origin is None or origin not in allowed_origins(request, settings):
        raise Forbidden("cross-site request refused (Origin is not allowed)", code="csrf_origin")


def check_csrf_token(request: HTTPServerRequest, cookie_value: str | None) -> None:
    """Double submit: the JS-readable gust_csrf cookie must be echoed in X-CSRF-Token."""
    header = request.headers.get(CSRF_HEADER)
    if not cookie_value or not header or not hmac.compare_digest(cookie_value, header):
        raise Forbidden(
            f"missing or wrong {CSRF_HEADER} header (echo the {CSRF_COOKIE} cookie)", code="csrf_token"
        )


def route_template(request: HTTPServerRequest, rules: Iterable[Any], handler_class: type) -> str:
    """The route template (`/api/chats/{chat_id}`) that served a request: ids, never paths
    that may hold secrets (share tokens) or query strings (search text)."""
    for rule in rules:
        template = getattr(rule, "template", None)
        if template and rule.target is handler_class and rule.matcher.match(request) is not None:
            return str(template)
    return handler_class.__name__
