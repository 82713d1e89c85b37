"""gunicorn settings and hooks for Gust.

    gunicorn -c backend/gust/gunicorn_conf.py gust.wsgi:application

`gunicorn.conf.py` at the repository root loads this file, so plain
`gunicorn gust.wsgi:application` run from there uses it too. Flags on the command line
(`-w 4`, `-b 127.0.0.1:9000`) win over the values here.

Each worker is a process with its own event loop: its services (database clients,
background tasks) are built on that loop before it serves, and closed when it exits.
"""

from __future__ import annotations

import os
import sys
from typing import Any

worker_class = "tornado"
bind = [f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8100')}"]  # noqa: S104
# Longer than Gust's own SHUTDOWN_TIMEOUT, so in-flight requests finish before gunicorn
# gives up on a worker.
graceful_timeout = int(float(os.environ.get("SHUTDOWN_TIMEOUT", "10"))) + 10
# Gust writes its own access log (request ids, routes, no query strings).
accesslog = None

MULTI_WORKER_WARNING = (
    "%d workers without REDIS_URL: resuming streams needs sticky sessions or REDIS_URL "
    "(each worker only knows its own generations)"
)


def on_starting(server: Any) -> None:
    """In the master, once: stop on invalid settings; warn about one-worker-only ones."""
    from gust.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"gust: {exc}", file=sys.stderr)
        raise SystemExit(2) from None  # before any worker starts
    if server.cfg.workers > 1 and not settings.redis_url:
        server.log.warning(MULTI_WORKER_WARNING, server.cfg.workers)
    for warning in settings.deployment_warnings():
        server.log.warning("%s", warning)


def post_worker_init(worker: Any) -> None:
    """In each worker, before it serves: build its runtime (gust/runtime.py) on its own loop.

    Run to completion rather than left to the first request: a worker whose services
    cannot start (unreadable data directory, bad models file...) fails to boot, and
    gunicorn stops with the error instead of serving 500s.
    """
    from tornado.ioloop import IOLoop

    from gust.app import GustApplication, freeze_startup_heap

    application = worker.wsgi
    if isinstance(application, GustApplication):
        IOLoop.current().run_sync(application.start_services)
        freeze_startup_heap()

        def limit_connections() -> None:  # the worker's server exists once its loop runs
            from gust.http_server import harden

            http_server = getattr(worker, "server", None)
            if http_server is not None:
                harden(http_server, application.gust_settings)

        IOLoop.current().add_callback(limit_connections)


def worker_exit(server: Any, worker: Any) -> None:
    """In each worker, after gunicorn stopped its loop: finish requests, close the runtime
    (each close step bounded: gust/closing.py)."""
    from tornado.ioloop import IOLoop

    from gust.app import GustApplication

    application = getattr(worker, "wsgi", None)
    if not isinstance(application, GustApplication):
        return
    http_server = getattr(worker, "server", None)

    async def shutdown() -> None:
        await application.shutdown()
        if http_server is not None:
            from gust.http_server import close_connections

            await close_connections(http_server, application.close_budget.remaining())

    IOLoop.current().run_sync(shutdown)
