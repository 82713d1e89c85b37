"""One admission policy for every path that starts a generation.

`/chat/stream`, `/chat/message`, `POST /api/chats/{id}/messages`, regenerate and
`/v1/chat/completions` (streaming or not) all pass through here, in this order:

1. capacity: MAX_ACTIVE_GENERATIONS counts the hub's running answers, the requests
   admitted but not yet started and the `/v1` completions in progress; over it: 503
   `overloaded` with Retry-After;
2. the per-user guards (RATE_LIMIT_MESSAGES_PER_MINUTE, 429 with Retry-After);
3. max_tokens: a request's value is refused over the model's `max_output_tokens`; without
   one, the model's default, else min(max_output_tokens, DEFAULT_MAX_TOKENS).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from gust.domain.errors import Overloaded, ValidationError
from gust.domain.model_spec import ModelSpec
from gust.domain.models import User

# Called before a generation starts (e.g. per-user rate limits); raises a domain error to refuse.
SendGuard = Callable[[User], Awaitable[None]]

DEFAULT_MAX_TOKENS = 4096
OVERLOADED_RETRY_AFTER = 5


class Admission:
    def __init__(
        self, *, max_active: int, running: Callable[[], int], guards: Sequence[SendGuard] = ()
    ) -> None:
        self.max_active = max_active
        self._running = running  # answers the hub runs right now
        self.guards: tuple[SendGuard, ...] = tuple(guards)
        self._admitting = 0  # admitted, job not yet in the hub
        self._direct = 0  # running outside the hub (/v1 completions)

    @property
    def active(self) -> int:
        return self._running() + self._admitting + self._direct

    def _check_capacity(self) -> None:
        if self.active >= self.max_active:
            raise Overloaded(
                "too many answers are being generated right now; retry shortly",
                retry_after=OVERLOADED_RETRY_AFTER,
            )

    async def _check_user(self, user: User) -> None:
        for guard in self.guards:
            await guard(user)

    @contextlib.asynccontextmanager
    async def starting(self, user: User) -> AsyncIterator[None]:
        """Admit a hub generation: a place is held from the check until the block ends
        (the job is in the hub by then and counted there).

        Between the check and the job's start lie several awaits (guards, chat and message
        writes); without the reservation, requests arriving together all passed the check."""
        self._check_capacity()
        self._admitting += 1
        try:
            await self._check_user(user)
            yield
        finally:
            self._admitting -= 1

    @contextlib.asynccontextmanager
    async def running(self, user: User) -> AsyncIterator[None]:
        """Admit a generation that runs outside the hub (/v1): its place is held until the
        block ends, i.e. for the whole completion."""
        self._check_capacity()
        self._direct += 1
        try:
            await self._check_user(user)
            yield
        finally:
            self._direct -= 1

    @staticmethod
    def max_tokens(spec: ModelSpec, requested: int | None) -> int:
        """The max_tokens an upstream request carries; 422 over the model's limit."""
        check_max_tokens(spec, requested)
        return requested or spec.default_max_tokens or min(spec.max_output_tokens, DEFAULT_MAX_TOKENS)


def check_max_tokens(spec: ModelSpec, requested: int | None) -> None:
    if requested is not None and requested > spec.max_output_tokens:
        raise ValidationError(
            f"max_tokens must be at most {spec.max_output_tokens} for {spec.id}", field="max_tokens"
        )
