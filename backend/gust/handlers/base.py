"""Base handlers: dependencies, authentication, JSON bodies and JSON errors."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import pydantic
import tornado.web
from tornado.concurrent import Future
from tornado.iostream import IOStream

from gust.domain.errors import (
    Forbidden,
    GustError,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
)
from gust.domain.errors import ValidationError as DomainValidationError
from gust.domain.ids import new_id
from gust.domain.json_input import parse_json
from gust.domain.models import User
from gust.handlers import web_security
from gust.observability import loggable_path
from gust.services.auth import API_KEY_PREFIX

if TYPE_CHECKING:
    from gust.app import GustApplication
    from gust.config import Settings
    from gust.services.auth import AuthService
    from gust.services.chats import ChatService
    from gust.services.registry import Services

log = logging.getLogger("gust.api")
M = TypeVar("M", bound=pydantic.BaseModel)

ACCESS_COOKIE = web_security.ACCESS_COOKIE
SHUTDOWN_RETRY_AFTER = 2  # seconds: another process (or this one's successor) answers by then
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


# Responses written piece by piece while the client reads them (events, tokens).
STREAMING_TYPES = ("text/event-stream", "application/x-ndjson")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@tornado.web.stream_request_body
class BaseHandler(tornado.web.RequestHandler):
    """Everything Gust serves: request ids, security headers, typed dependencies, bodies capped
    before they are read, errors as JSON."""

    request_id: str
    application: GustApplication
    max_body_bytes: int | None = None  # None: the configured MAX_BODY_BYTES

    def __init__(self, application: Any, request: Any, **kwargs: Any) -> None:
        self._body_chunks: list[bytes] = []
        self._body_size = 0
        super().__init__(application, request, **kwargs)
        # Graceful shutdown waits for the requests in this set.
        self.application.request_started(self)

    def on_finish(self) -> None:
        self.application.request_done(self)

    def on_connection_close(self) -> None:
        self.application.request_done(self)
        super().on_connection_close()

    # -- dependencies --------------------------------------------------------------
    @property
    def gust_settings(self) -> Settings:
        return self.application.gust_settings

    @property
    def services(self) -> Services:
        services = self.application.services
        if services is None:
            raise RuntimeError("services used before start")
        return services

    @property
    def auth(self) -> AuthService:
        return self.services.auth

    @property
    def chats(self) -> ChatService:
        return self.services.chats

    # -- request framing -------------------------------------------------------------
    def set_default_headers(self) -> None:
        self.request_id = self._incoming_request_id() or new_id()
        self.set_header("X-Request-ID", self.request_id)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "strict-origin-when-cross-origin")
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("Cross-Origin-Opener-Policy", "same-origin")
        self.set_header("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if self.secure_transport:
            self.set_header("Strict-Transport-Security", web_security.HSTS)
        cors_origin = web_security.cors_origin(self.request, self.gust_settings)
        if cors_origin:
            self.set_header("Access-Control-Allow-Origin", cors_origin)
            self.set_header("Access-Control-Expose-Headers", web_security.CORS_EXPOSE_HEADERS)
            self.set_header("Vary", "Origin")

    @property
    def scheme(self) -> str:
        """`https` or `http` as the client sees it (X-Forwarded-Proto from TRUSTED_PROXIES only)."""
        return web_security.request_scheme(self.request, self.gust_settings.trusted_proxies)

    @property
    def secure_transport(self) -> bool:
        """Users reach Gust over https (PUBLIC_URL or the request): Secure cookies, HSTS."""
        return web_security.secure_transport(self.request, self.gust_settings)

    @property
    def client_ip(self) -> str:
        """The client's address (X-Forwarded-For from TRUSTED_PROXIES only)."""
        return web_security.client_ip(self.request, self.gust_settings.trusted_proxies)

    def _incoming_request_id(self) -> str | None:
        value = self.request.headers.get("X-Request-ID")
        return value if value and _REQUEST_ID.match(value) else None

    async def prepare(self) -> None:
        app = self.application
        if app.services is None:
            await app.start_services()
        self.refuse_oversized_body()

    def flush(self, include_footers: bool = False) -> Future[None]:
        if not self._headers_written and not include_footers:
            self._stream_without_delay()
        return super().flush(include_footers)

    def _stream_without_delay(self) -> None:
        """Turn Nagle's algorithm off for an event or token stream, before its first byte.

        With it on (Tornado's default), a small write that follows one the client has not
        acknowledged yet waits for the client's delayed ACK, ~40 ms: on a reused keep-alive
        connection the first token of every answer came late. Every handler that streams
        SSE or NDJSON goes through here, by its Content-Type, at its first flush.
        """
        content_type = str(self._headers.get("Content-Type", ""))
        if not content_type.startswith(STREAMING_TYPES):
            return
        stream = getattr(self.request.connection, "stream", None)
        if isinstance(stream, IOStream) and not stream.closed():
            stream.set_nodelay(True)

    def refuse_oversized_body(self) -> None:
        """413 from the headers alone, before the body is read (every prepare() calls this)."""
        limit = self.body_limit
        length = self.request.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes", limit=limit)

    # -- request bodies ------------------------------------------------------------------
    @property
    def body_limit(self) -> int:
        return self.max_body_bytes or self.gust_settings.max_body_bytes

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        # Every handler streams its body (stream_request_body), so Tornado never buffers one:
        # count as it arrives and keep no more than the limit, chunked bodies included.
        self._body_size += len(chunk)
        if self._body_size <= self.body_limit:
            self._body_chunks.append(chunk)
        return None

    @property
    def body(self) -> bytes:
        if self._body_size > self.body_limit:
            raise PayloadTooLarge(f"request body is larger than {self.body_limit} bytes")
        return b"".join(self._body_chunks)

    # -- errors ------------------------------------------------------------------------
    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        error: dict[str, Any]
        if isinstance(exc, GustError):
            self.set_status(exc.status)
            error = {"code": exc.code, "message": exc.message, **exc.detail}
            if isinstance(exc, RateLimited) or getattr(exc, "retry_after", None):
                self.set_header("Retry-After", str(int(getattr(exc, "retry_after", 1) or 1)))
        elif isinstance(exc, tornado.web.HTTPError) or exc is None:
            code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(
                status_code, "http_error"
            )
            message = (exc.log_message if isinstance(exc, tornado.web.HTTPError) else None) or self._reason
            error = {"code": code, "message": message}
        elif self.application.shutting_down:
            # Most likely a service closed under a request that outlived SHUTDOWN_TIMEOUT.
            self.set_status(503)
            self.set_header("Retry-After", str(SHUTDOWN_RETRY_AFTER))
            error = {"code": "shutting_down", "message": "the server is shutting down; retry"}
        else:
            self.set_status(500)
            error = {
                "code": "internal_error",
                "message": "the server failed to handle this request; quote the request id when reporting it",
            }
        error["request_id"] = self.request_id
        if self.get_status() >= 500 and not self.application.shutting_down:
            self._record_error(exc)
        prepared = self._prepared_future  # set by Tornado for stream_request_body handlers
        if prepared is not None and not prepared.done():
            # An error in prepare(): Tornado closes the connection after a response that
            # ends before the request body was read. Say so, or a keep-alive client sends
            # its next request into a closed socket.
            self.set_header("Connection", "close")
        self.finish(dumps({"error": error}))

    def _record_error(self, exc: BaseException | None) -> None:
        """Into the user's team's error log: route, request id, user, type; never message text."""
        services = self.application.services
        if services is None:
            return  # failed while the process was still starting: the server log only
        user = self.current_user if isinstance(self.current_user, User) else None
        if user is None:
            return  # no team to show it to: the server log only (see services/errorlog.py)
        services.error_log.record_soon(
            status=self.get_status(),
            method=self.request.method or "-",
            route=web_security.route_template(self.request, self.application.api_rules, type(self)),
            request_id=self.request_id,
            error_type=type(exc).__name__ if exc is not None else "HTTPError",
            severity="error" if self.get_status() == 500 else "warning",
            user=user,
        )

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, GustError):
            return  # an expected outcome, logged by the access log with its status
        if isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)
            return
        # Tornado's own line adds repr(request): the full URI (query tokens) and every header
        # (cookies, Authorization). The request id ties this to the access log line instead.
        log.error("uncaught exception %s rid=%s", self._request_summary(), self.request_id,
                  exc_info=(typ, value, tb))

    def _request_summary(self) -> str:
        return f"{self.request.method} {loggable_path(self)} ({self.request.remote_ip})"


class APIHandler(BaseHandler):
    """JSON API: authentication, CSRF checks, bodies parsed into pydantic models."""

    auth_required = True
    # How the request authenticated: "bearer" (access token), "api_key", "cookie" or None.
    auth_method: str | None = None
    # True only where another defence replaces the CSRF checks (the OAuth callback's state).
    csrf_exempt = False
    # The HTTP methods an API key (`Bearer gust_...`) may call here. Keys are for chatting,
    # searching, the user's own chats and /v1; anything else (accounts, keys, invites, teams,
    # agents, administration, and every route that does not opt in) answers 403.
    api_key_methods: frozenset[str] = frozenset()

    async def prepare(self) -> None:
        await super().prepare()
        if self.request.method == "OPTIONS":
            return  # a CORS preflight carries no credentials
        self.current_user = await self._authenticate()
        if self.auth_required and self.current_user is None:
            raise Unauthorized("authentication required", code="unauthorized")
        if self.auth_method == "api_key" and self.request.method not in self.api_key_methods:
            raise Forbidden("not allowed with an API key; sign in instead", code="api_key_not_allowed")
        if (
            self.request.method in web_security.UNSAFE_METHODS
            and "Authorization" not in self.request.headers
            and not self.csrf_exempt
        ):
            # Bearer requests are exempt: a browser never adds that header on its own.
            web_security.check_origin(self.request, self.gust_settings)
            if self.auth_method == "cookie":
                self.check_csrf_token()

    def check_csrf_token(self) -> None:
        web_security.check_csrf_token(self.request, self.get_cookie(web_security.CSRF_COOKIE))

    async def check_rate_limit(self, bucket: str, key: str) -> None:
        """Count a hit (e.g. `await self.check_rate_limit("messages", self.user.id)`); raises
        RateLimited (429 + Retry-After) over the bucket's limit. See services/ratelimit.py."""
        await self.services.rate_limits.check(bucket, key)

    async def options(self, *args: Any, **kwargs: Any) -> None:
        """CORS preflight: allowed for CORS_ORIGINS only (others get no CORS headers)."""
        if web_security.cors_origin(self.request, self.gust_settings):
            from gust.handlers.routing import implemented_methods

            methods = ", ".join(m.upper() for m in implemented_methods(type(self)))
            self.set_header("Access-Control-Allow-Methods", methods)
            self.set_header("Access-Control-Allow-Headers", web_security.CORS_ALLOW_HEADERS)
            self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    async def _authenticate(self) -> User | None:
        header = self.request.headers.get("Authorization", "")
        token: str | None = None
        if header:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                raise Unauthorized("Authorization header must be 'Bearer <token>'", code="invalid_token")
            token = value.strip()
            if token.startswith(API_KEY_PREFIX):
                self.auth_method = "api_key"
                return await self.auth.authenticate_api_key(token)
            self.auth_method = "bearer"
        else:
            token = self.get_cookie(ACCESS_COOKIE)
            self.auth_method = "cookie" if token else None
            if token and not self.auth_required:
                # A stale session cookie must not lock a browser out of login or refresh.
                try:
                    return await self.auth.authenticate(token)
                except Unauthorized:
                    self.auth_method = None
                    return None
        if not token:
            return None
        return await self.auth.authenticate(token)

    @property
    def user(self) -> User:
        user = self.current_user
        if not isinstance(user, User):
            raise Unauthorized("authentication required")
        return user

    # -- JSON in and out ---------------------------------------------------------------
    def json_body(self, model: type[M]) -> M:
        """Parse the body into `model`: 400 for malformed or too deeply nested JSON (see
        domain/json_input.py), 422 naming the bad field."""
        raw = self.body
        data = parse_json(raw) if raw.strip() else {}
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise validation_error(exc) from None

    def query_model(self, model: type[M]) -> M:
        """Parse query arguments into `model` (422 naming the bad parameter)."""
        data = {k: self.get_query_argument(k) for k in self.request.query_arguments}
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise validation_error(exc) from None

    def write_json(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(dumps(value))


def validation_error(exc: pydantic.ValidationError) -> DomainValidationError:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or None
    message = f"{field}: {first['msg']}" if field else str(first["msg"])
    return DomainValidationError(message, field=field)


class NotFoundHandler(APIHandler):
    """Unknown routes answer JSON 404 whatever the method."""

    auth_required = False
    unmatched_route = True  # the access log redacts long path segments (mistyped share links)

    async def prepare(self) -> None:
        raise NotFound(f"no such route: {self.request.method} {self.request.path}")


class ShuttingDownHandler(BaseHandler):
    """Every request that arrives once shutdown has begun (on a kept-alive connection): 503,
    Retry-After and Connection: close, so clients retry on another process instead of
    reaching services that are closing."""

    async def prepare(self) -> None:
        self.set_status(503)
        self.set_header("Retry-After", str(SHUTDOWN_RETRY_AFTER))
        self.set_header("Connection", "close")
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        body = {"code": "shutting_down", "message": "the server is shutting down; retry",
                "request_id": self.request_id}
        await self.finish(dumps({"error": body}))
        self.request.connection.close()  # type: ignore[union-attr]
