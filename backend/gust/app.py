"""The Tornado application: routes, the requests in flight, and the runtime it serves with.

The services are built by gust/runtime.py (`open_runtime`), entered into the application's
exit stack by `start_services()` and closed by `shutdown()`; serving a process is
gust/serve.py (`python -m gust serve`) or gust/gunicorn_conf.py (gunicorn workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import tornado.httputil
import tornado.web
from tornado.routing import Rule

from gust.closing import CloseBudget
from gust.config import Settings, stuck_store_limit
from gust.handlers.base import NotFoundHandler, ShuttingDownHandler
from gust.handlers.frontend import frontend_handlers
from gust.handlers.openapi_doc import build_openapi
from gust.http_server import HideServerHeader
from gust.observability import Metrics
from gust.routes import api_handlers
from gust.runtime import close_budget, open_runtime
from gust.services.registry import Services
from gust.services.watchdog import Watchdog

log = logging.getLogger(__name__)

# Seconds past SHUTDOWN_TIMEOUT the hub has to store the answers it stopped as interrupted.
HUB_GRACE = 2.0

FRONTEND_DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist"


class GustApplication(tornado.web.Application):
    """A Tornado application that builds its process's services once, on the running loop.

    It listens before they exist: until `start_services()` is done, /health/ready says
    "starting" and other requests wait for the start (BaseHandler.prepare).
    """

    def __init__(self, settings: Settings, **tornado_settings: Any) -> None:
        self.gust_settings = settings
        self.metrics = Metrics()
        self.services: Services | None = None  # set once the runtime is built
        self.close_budget: CloseBudget = close_budget(settings)
        self._runtime = AsyncExitStack()
        self.inflight: set[tornado.web.RequestHandler] = set()
        self.shutting_down = False  # set when shutdown begins: new requests get 503
        self.watchdog = Watchdog(
            loop_lag_limit=settings.watchdog_loop_lag_s, stuck_store_limit=stuck_store_limit(settings)
        )
        self._idle = asyncio.Event()
        self._starting: asyncio.Future[None] | None = None
        self.api_rules = api_handlers()
        rules = [*self.api_rules, *frontend_handlers(FRONTEND_DIST)]
        self.openapi = build_openapi(rules)
        super().__init__(
            rules,
            default_handler_class=NotFoundHandler,
            log_function=self.metrics.log_request,
            debug=False,
            autoreload=False,
            compress_response=False,  # compression would buffer SSE
            xsrf_cookies=False,
            **tornado_settings,
        )
        self.add_transform(HideServerHeader)

    def find_handler(
        self, request: tornado.httputil.HTTPServerRequest, **kwargs: Any
    ) -> tornado.web._HandlerDelegate:
        if self.shutting_down:
            return self.get_handler_delegate(request, ShuttingDownHandler)
        return super().find_handler(request, **kwargs)

    def begin_shutdown(self) -> None:
        """From now on every new request, on any route, answers 503 (see ShuttingDownHandler)."""
        self.shutting_down = True

    def request_started(self, handler: tornado.web.RequestHandler) -> None:
        self.inflight.add(handler)

    def request_done(self, handler: tornado.web.RequestHandler) -> None:
        self.inflight.discard(handler)
        if not self.inflight:
            self._idle.set()

    @property
    def all_rules(self) -> list[Rule]:
        return list(self.wildcard_router.rules)

    async def start_services(self) -> None:
        """Build the runtime on the running loop, once (concurrent callers share the start)."""
        if self.services is not None:
            return
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        services = await self._runtime.enter_async_context(
            open_runtime(self.gust_settings, self.metrics, self.close_budget)
        )
        calls = getattr(services.store, "calls", None)  # the store calls in flight (adapters/store/guard.py)
        if calls is not None:
            self.watchdog.oldest_store_call = calls.oldest
        self.services = services
        self.watchdog.start()

    async def shutdown(self) -> None:
        """Drain for up to SHUTDOWN_TIMEOUT (running answers, requests in flight), then close
        the runtime: each close step bounded, all of them within SHUTDOWN_FORCE_AFTER."""
        self.begin_shutdown()
        loop = asyncio.get_running_loop()
        timeout = self.gust_settings.shutdown_timeout
        deadline = loop.time() + timeout
        starting = self._starting
        if starting is not None and not starting.done():
            await asyncio.wait([starting], timeout=timeout)  # a start in progress may finish
            if not starting.done():
                log.warning("shutdown: the services did not finish starting; stopping their start")
                starting.cancel()
                await asyncio.wait([starting], timeout=self.close_budget.total)
        services = self.services
        if services is not None:
            services.user_events.close()  # notification streams end now
            # Running answers may finish; then the rest are stored as interrupted and their
            # streams end with a retryable server_shutdown error.
            hub = asyncio.ensure_future(services.hub.shutdown(max(deadline - loop.time(), 0.0)))
            # (plus a little for storing the rest as interrupted)
            if not (await asyncio.wait([hub], timeout=max(deadline - loop.time(), 0.0) + HUB_GRACE))[0]:
                log.warning("shutdown: running answers did not end within %.1fs", timeout)
                hub.cancel()
        if self.inflight:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), max(deadline - loop.time(), 0.0))
        if self.inflight:
            log.warning("shutdown: %d requests still open after %.1fs", len(self.inflight), timeout)
        self.close_budget.start()
        await self._runtime.aclose()
        await self.watchdog.stop()


def freeze_startup_heap() -> None:
    """Take what start-up built out of the garbage collector's scans.

    Modules, routes, compiled patterns and clients live as long as the process. Frozen,
    they are skipped by the full collections that running streams trigger, so those
    pauses (which every open stream and new request waits out) stay short.
    """
    gc.collect()
    gc.freeze()


def make_app(settings: Settings) -> GustApplication:
    """The Tornado application; its services are built by `start_services()` (or the first request)."""
    return GustApplication(settings)
