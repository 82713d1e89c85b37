"""Logging (plain or JSON lines, request ids) and Prometheus metrics."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any
from urllib.parse import unquote

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from tornado.web import RequestHandler

access_log = logging.getLogger("gust.access")

# Path parameters that are plain ids and may be logged. Any other one (a share link's secret,
# a token, whatever a later route adds) is written as REDACTED: logs are read by more people,
# and kept longer, than the links they would leak.
LOGGABLE_PATH_PARAMS = frozenset(
    {"chat_id", "message_id", "agent_id", "user_id", "invite_id", "key_id", "provider", "path"}
)
REDACTED = "[redacted]"
_LONG_SEGMENT = 16  # in paths no route matched, segments this long may be mistyped secrets


def loggable_path(handler: RequestHandler) -> str:
    """The request's path for logs: never the query string (tokens, codes, search text), and
    secret path parameters (share links...) redacted."""
    path = handler.request.path
    secrets = {
        value for name, value in (getattr(handler, "path_kwargs", None) or {}).items()
        if name not in LOGGABLE_PATH_PARAMS and value
    }
    unmatched = getattr(handler, "unmatched_route", False)
    if not secrets and not unmatched:
        return path
    segments = []
    for segment in path.split("/"):
        decoded = unquote(segment)
        secret = decoded in secrets or (unmatched and len(decoded) >= _LONG_SEGMENT)
        segments.append(REDACTED if secret else segment)
    return "/".join(segments)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "method", "route", "status", "duration_ms", "user_id"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "plain") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Tornado's own access log is replaced by ours (request id, route, no query strings).
    logging.getLogger("tornado.access").setLevel(logging.WARNING)


class Metrics:
    """Prometheus collectors of one process, on a registry of its own (no globals)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "gust_http_requests", "HTTP requests", ["route", "method", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "gust_http_request_duration_seconds",
            "HTTP request duration (for streams: the whole stream)",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.active_generations = Gauge(
            "gust_active_generations", "Generations running in this process", registry=self.registry
        )
        self.generations = Counter(
            "gust_generations", "Finished generations by final status", ["status"], registry=self.registry
        )
        self.search_pending = Gauge(
            "gust_search_pending", "Documents waiting to be indexed", registry=self.registry
        )

    def log_request(self, handler: RequestHandler) -> None:
        """Tornado's log_function: one access line and the request metrics per request."""
        status = handler.get_status()
        duration = handler.request.request_time()
        route = type(handler).__name__
        method = handler.request.method or "-"
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(duration)
        if status < 400:
            level = logging.DEBUG if route in ("HealthHandler", "MetricsHandler") else logging.INFO
        elif status < 500:
            level = logging.WARNING
        else:
            level = logging.ERROR
        user = getattr(handler, "current_user", None)
        access_log.log(
            level,
            "%s %s %d %.1fms rid=%s",
            method,
            loggable_path(handler),
            status,
            duration * 1000,
            getattr(handler, "request_id", "-"),
            extra={
                "request_id": getattr(handler, "request_id", None),
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(duration * 1000, 1),
                "user_id": getattr(user, "id", None),
            },
        )
