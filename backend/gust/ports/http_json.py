"""The outbound JSON-over-HTTP port used by sign-in with OAuth / OpenID Connect providers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class HttpResult:
    status: int
    body: Any  # parsed JSON, or None when the body was not JSON


class HttpUnavailable(Exception):
    """The remote server could not be reached or answered too slowly."""


class HttpJson(Protocol):
    async def get_json(self, url: str, *, headers: Mapping[str, str] | None = None) -> HttpResult: ...

    async def post_form(
        self, url: str, data: Mapping[str, str], *, headers: Mapping[str, str] | None = None
    ) -> HttpResult: ...

    async def close(self) -> None: ...
