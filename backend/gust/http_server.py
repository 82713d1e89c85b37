"""The HTTP server in front of the application: connection timeouts, an optional cap on
connections per client address, an accept loop that survives running out of file
descriptors without flooding the log, and no `Server` header."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import tornado.httpserver
import tornado.httputil
import tornado.iostream
import tornado.web
from tornado.http1connection import HTTP1ServerConnection
from tornado.ioloop import IOLoop

from gust.config import Settings
from gust.handlers import web_security

log = logging.getLogger(__name__)

MAX_BODY_SIZE = 64 * 1024 * 1024  # Tornado's own ceiling; handlers enforce the real limits
ACCEPT_BACKOFF = 0.1  # seconds without accepting after accept() fails for lack of resources
ACCEPT_LOG_INTERVAL = 10.0  # seconds between two log lines about failing accepts
# Out of descriptors, buffers or memory: the pending connection stays queued, the listening
# socket stays readable, and retrying at once would spin (and log) hundreds of thousands of
# times a minute.
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class HideServerHeader(tornado.web.OutputTransform):
    """No `Server: TornadoServer/x.y` on any answer (static files and errors included): the
    version tells scanners which advisories to try."""

    def transform_first_chunk(
        self, status_code: int, headers: tornado.httputil.HTTPHeaders, chunk: bytes, finishing: bool
    ) -> tuple[int, tornado.httputil.HTTPHeaders, bytes]:
        headers.pop("Server", None)
        return status_code, headers, chunk


class AcceptErrors:
    """Counts failed accepts and logs at most one line per interval, with the count."""

    def __init__(self, interval: float = ACCEPT_LOG_INTERVAL) -> None:
        self.interval = interval
        self.count = 0
        self._last_log = -float("inf")

    def failed(self, exc: OSError) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._last_log >= self.interval:
            log.error(
                "accepting connections fails: %s (%d times since the last report; accepts "
                "pause %.1fs after each failure; raise the open-files limit or lower the load)",
                exc.strerror or exc, self.count, ACCEPT_BACKOFF,
            )
            self.count = 0
            self._last_log = now


def add_accept_handler(
    sock: socket.socket, callback: Callable[[socket.socket, Any], None], errors: AcceptErrors
) -> Callable[[], None]:
    """Like tornado.netutil.add_accept_handler, but a resource error pauses accepting for
    ACCEPT_BACKOFF seconds (counted by `errors`) instead of raising from the loop callback."""
    loop = IOLoop.current()
    state = {"removed": False, "paused": False}

    def resume() -> None:
        if not state["removed"] and state["paused"]:
            state["paused"] = False
            loop.add_handler(sock, accept_handler, IOLoop.READ)

    def accept_handler(fd: Any, events: int) -> None:
        for _ in range(128):  # as Tornado: a bounded batch, so other callbacks run too
            if state["removed"]:
                return
            try:
                connection, address = sock.accept()
            except BlockingIOError:
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                errors.failed(exc)
                state["paused"] = True
                loop.remove_handler(sock)
                loop.call_later(ACCEPT_BACKOFF, resume)
                return
            callback(connection, address)

    def remove_handler() -> None:
        if not state["paused"]:
            loop.remove_handler(sock)
        state["removed"] = True

    loop.add_handler(sock, accept_handler, IOLoop.READ)
    return remove_handler


class GustHTTPServer(tornado.httpserver.HTTPServer):
    """HTTPServer with resource-safe accepts and MAX_CONNECTIONS_PER_ADDRESS."""

    def initialize(  # type: ignore[override]
        self, request_callback: Any, *, per_address: int = 0, exempt: tuple[str, ...] = (), **kwargs: Any
    ) -> None:
        super().initialize(request_callback, **kwargs)
        self.per_address = per_address
        self.exempt = exempt  # TRUSTED_PROXIES: every user arrives through them
        self.open_per_address: Counter[str] = Counter()
        self._address_of: dict[HTTP1ServerConnection, str] = {}
        self.accept_errors = AcceptErrors()

    def add_sockets(self, sockets: Iterable[socket.socket]) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            handler = add_accept_handler(sock, self._handle_connection, self.accept_errors)
            self._handlers[sock.fileno()] = handler

    def handle_stream(self, stream: tornado.iostream.IOStream, address: Any) -> None:
        ip = address[0] if isinstance(address, tuple) and address else str(address)
        limited = self.per_address > 0 and not web_security.is_trusted(ip, self.exempt)
        if limited and self.open_per_address[ip] >= self.per_address:
            stream.close()  # over the cap: refused before any byte is read
            return
        context = tornado.httpserver._HTTPRequestContext(
            stream, address, self.protocol, self.trusted_downstream
        )
        conn = HTTP1ServerConnection(stream, self.conn_params, context)
        self._connections.add(conn)
        if limited:
            self.open_per_address[ip] += 1
            self._address_of[conn] = ip
        conn.start_serving(self)

    def on_close(self, server_conn: object) -> None:
        ip = self._address_of.pop(server_conn, None)  # type: ignore[call-overload]
        if ip is not None:
            self.open_per_address[ip] -= 1
            if self.open_per_address[ip] <= 0:
                del self.open_per_address[ip]
        super().on_close(server_conn)


def make_http_server(app: tornado.web.Application, settings: Settings) -> GustHTTPServer:
    """The server main() and the tests run: timeouts and limits from settings."""
    return GustHTTPServer(
        app,
        xheaders=False,  # X-Forwarded-* count only from TRUSTED_PROXIES (handlers/web_security.py)
        max_body_size=MAX_BODY_SIZE,
        max_header_size=settings.http_max_header_bytes,
        # Tornado's header timeout: a connection must deliver a request's headers this soon
        # after it opens or after its previous answer (slow or idle clients let go).
        idle_connection_timeout=settings.http_idle_timeout,
        body_timeout=settings.http_body_timeout,
        per_address=settings.max_connections_per_address,
        exempt=settings.trusted_proxies,
    )


def harden(server: tornado.httpserver.HTTPServer, settings: Settings) -> None:
    """Timeouts and resource-safe accepts on a server built elsewhere (gunicorn's tornado
    worker builds its own, after our hooks run). The per-address cap needs GustHTTPServer
    (`python -m gust serve`)."""
    server.conn_params.header_timeout = settings.http_idle_timeout
    server.conn_params.body_timeout = settings.http_body_timeout
    server.conn_params.max_header_size = settings.http_max_header_bytes
    if isinstance(server, GustHTTPServer):
        return
    errors = AcceptErrors()
    for fd, remove in list(server._handlers.items()):
        remove()
        server._handlers[fd] = add_accept_handler(server._sockets[fd], server._handle_connection, errors)


async def close_connections(server: tornado.httpserver.HTTPServer, within: float) -> None:
    """Close every open connection at once, waiting up to `within` s for their requests.

    Not `close_all_connections()` under a timeout: it closes one connection after another,
    waits for each one's request, and a request hung on the store kept it (and its
    cancellation) waiting past the force-exit deadline. What is still open afterwards is
    left to the process exit.
    """
    closing = [asyncio.ensure_future(conn.close()) for conn in list(server._connections)]
    if not closing:
        return
    _, pending = await asyncio.wait(closing, timeout=max(within, 0.01))
    if pending:
        log.warning("shutdown: %d connections still busy after %.1fs; leaving them", len(pending), within)
