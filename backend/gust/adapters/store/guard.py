"""What every store call goes through: error mapping, tracking for the watchdog, a shield.

- Errors: each adapter says which of its errors mean "the store is unavailable" (network,
  timeouts, a locked database); they become StoreUnavailable, which the API answers with
  503 + Retry-After, never 500.
- Tracking: the calls in flight and when each began, so the watchdog can report a call
  that hangs (GET /health answers 503 and an orchestrator restarts the process).
- Shield (MongoDB): a call runs in a task of its own that the caller's cancellation never
  reaches; it ends on PyMongo's own timeouts (timeoutMS). Cancelling a task inside
  PyMongo's server selection (once from a timeout, again from a stop or a shutdown) left
  the topology lock held forever on Python 3.11: every later call waited for it, the
  process wedged (tests/integration/test_store_outage.py reproduces it).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gust.domain.errors import StoreUnavailable

log = logging.getLogger(__name__)
C = TypeVar("C", bound=type)

# Lifecycle methods are not store calls: close() must run even when the store hangs.
NOT_CALLS = frozenset({"start", "close", "ensure_indexes"})


class StoreCalls:
    """The store calls in flight: `oldest()` is what the watchdog checks."""

    __slots__ = ("_counter", "_started", "backend", "down_since", "failures")

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._started: dict[int, tuple[str, float]] = {}
        self._counter = itertools.count()
        # One log line when an outage begins and one when it ends, not one per call.
        self.down_since: float | None = None
        self.failures = 0

    def failed(self, operation: str, reason: str) -> None:
        self.failures += 1
        if self.down_since is None:
            self.down_since = time.monotonic()
            log.error("store %s unavailable (%s: %s); calls answer 503 until it is back",
                      self.backend, operation, reason)

    def answered(self) -> None:
        if self.down_since is not None:
            log.warning("store %s answers again after %.1fs; %d calls failed meanwhile",
                        self.backend, time.monotonic() - self.down_since, self.failures)
            self.down_since, self.failures = None, 0

    def begin(self, name: str) -> int:
        token = next(self._counter)
        self._started[token] = (name, time.monotonic())
        return token

    def end(self, token: int) -> None:
        self._started.pop(token, None)

    @property
    def in_flight(self) -> int:
        return len(self._started)

    def oldest(self) -> tuple[str, float] | None:
        """(operation, seconds in flight) of the oldest call, or None."""
        if not self._started:
            return None
        name, started = min(self._started.values(), key=lambda item: item[1])
        return name, time.monotonic() - started


def guarded(*, shield: bool) -> Callable[[C], C]:
    """Class decorator: wrap every public coroutine method of a store (and its mixins).

    The instance provides `calls: StoreCalls` and `unavailable(exc) -> str | None` (a
    reason when `exc` means the store cannot be reached).
    """

    def decorate(cls: C) -> C:
        for name in dir(cls):
            if name.startswith("_") or name in NOT_CALLS:
                continue
            method = getattr(cls, name)
            if inspect.iscoroutinefunction(method):
                setattr(cls, name, _wrap(method, name, shield))
        return cls

    return decorate


def _wrap(method: Callable[..., Awaitable[Any]], name: str, shield: bool) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not shield:
            return await _tracked(self, name, method(self, *args, **kwargs))
        task = asyncio.ensure_future(_tracked(self, name, method(self, *args, **kwargs)))
        task.add_done_callback(_consume)
        return await asyncio.shield(task)

    call.__gust_guarded__ = True  # type: ignore[attr-defined]
    return call


async def _tracked(store: Any, name: str, call: Awaitable[Any]) -> Any:
    calls: StoreCalls = store.calls
    token = calls.begin(name)
    try:
        result = await call
    except StoreUnavailable:
        raise
    except Exception as exc:
        reason = store.unavailable(exc)
        if reason is None:
            raise
        calls.failed(name, reason)
        # The reason (hosts, ports) goes to the log and /health/ready, not to clients.
        raise StoreUnavailable(reason=reason) from exc
    finally:
        calls.end(token)
    if calls.down_since is not None:
        calls.answered()
    return result


def _consume(task: asyncio.Future[Any]) -> None:
    """A shielded call whose caller went away: its outcome is nobody's, log it quietly."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None and not isinstance(exc, StoreUnavailable):
        log.debug("a store call whose caller was cancelled failed: %r", exc)
