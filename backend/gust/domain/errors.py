"""Domain exceptions raised by services and mapped to HTTP by the API base handler."""

from __future__ import annotations

from typing import Any


class GustError(Exception):
    """Base of every error a client may see; `code` is stable, `message` is human text."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str = "", *, code: str | None = None, **detail: Any) -> None:
        super().__init__(message or self.code)
        self.message = message or self.code.replace("_", " ")
        if code:
            self.code = code
        self.detail = detail


class BadRequest(GustError):
    status = 400
    code = "bad_request"


class ValidationError(GustError):
    """A well-formed request with wrong fields or values (422)."""

    status = 422
    code = "validation_error"


class Unauthorized(GustError):
    status = 401
    code = "unauthorized"


class Forbidden(GustError):
    status = 403
    code = "forbidden"


class NotFound(GustError):
    status = 404
    code = "not_found"


class Conflict(GustError):
    status = 409
    code = "conflict"


class PayloadTooLarge(GustError):
    status = 413
    code = "payload_too_large"


class RateLimited(GustError):
    status = 429
    code = "rate_limited"

    def __init__(self, message: str = "", *, retry_after: int = 1, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.retry_after = retry_after


class Overloaded(GustError):
    """The server refuses new work instead of slowing everyone down (503)."""

    status = 503
    code = "overloaded"

    def __init__(self, message: str = "", *, retry_after: int = 5, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.retry_after = retry_after


class UpstreamError(GustError):
    """An LLM provider or other upstream failed; `retryable` tells clients whether to retry.

    `message` is Gust's own words, shown to users; what the provider itself said goes in
    `provider_message`, which only the server log sees (it may name internal hosts, keys,
    accounts or quotas)."""

    status = 502
    code = "upstream_error"

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        retryable: bool = False,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        provider_message: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.retryable = retryable
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        self.provider_message = provider_message


class Unavailable(GustError):
    """A dependency (store, search, bus) cannot be reached."""

    status = 503
    code = "unavailable"


class StoreUnavailable(Unavailable):
    """The store did not answer in time or refused the connection: retry later (503).

    Raised by the store adapters for network errors, timeouts and a locked database, so
    every route that touches the store answers 503 with Retry-After instead of 500.
    """

    code = "store_unavailable"

    def __init__(self, message: str = "", *, retry_after: int = 5, reason: str = "", **detail: Any) -> None:
        super().__init__(message or "the database is unavailable; retry shortly", **detail)
        self.retry_after = retry_after
        self.reason = reason or self.message  # for logs and /health/ready, not for clients
