"""`python -m gust serve`: listen, build the runtime, serve until SIGTERM/SIGINT, shut down."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading

import tornado.netutil

from gust import __version__
from gust.app import freeze_startup_heap, make_app
from gust.config import Settings
from gust.http_server import close_connections, make_http_server

log = logging.getLogger(__name__)


async def main(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully.

    Listens first: /health answers at once and /health/ready reports the store down until
    it answers, so a store that is down at start-up delays nothing but readiness.
    """
    for warning in settings.deployment_warnings():
        log.warning("%s", warning)
    app = make_app(settings)
    server = make_http_server(app, settings)
    sockets = tornado.netutil.bind_sockets(settings.port, settings.host)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    log.info(
        "Gust %s serving on http://%s:%d (store %s)",
        __version__,
        "localhost" if settings.host in ("0.0.0.0", "::") else settings.host,  # noqa: S104
        port,
        "mongodb" if settings.mongodb_uri else "sqlite",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app.watchdog.start()
    starting = asyncio.ensure_future(app.start_services())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception() is not None:
        stopping.cancel()
        server.stop()
        await app.shutdown()  # closes what the failed start had opened
        starting.result()  # a bad models file, an unusable data directory...: exit with it
    if not stopping.done():
        freeze_startup_heap()
    await stopping
    app.begin_shutdown()  # from now on new requests answer 503
    deadline = settings.shutdown_timeout + settings.shutdown_force_after
    # The close steps end a second before the force-exit timer, counted from the signal.
    app.close_budget.start(deadline - 1.0)
    log.info("shutting down: no new connections; waiting up to %.0fs", settings.shutdown_timeout)
    # A thread, not the loop: it fires even when the loop itself is stuck.
    force = threading.Timer(deadline, _force_exit, args=(deadline,))
    force.daemon = True
    force.start()
    server.stop()
    await app.shutdown()
    await close_connections(server, app.close_budget.remaining())
    force.cancel()
    log.info("stopped")


def _force_exit(deadline: float) -> None:
    """The graceful shutdown hangs (a store or client that never answers): exit anyway."""
    log.error("shutdown did not finish within %.0fs of the signal: exiting now", deadline)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    sys.stderr.flush()
    os._exit(1)
