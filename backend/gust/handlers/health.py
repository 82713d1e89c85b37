"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gust import __version__
from gust.handlers.base import APIHandler, BaseHandler, dumps
from gust.handlers.routing import Op, route
from gust.handlers.schemas import HealthOut, ReadyOut

READY_TIMEOUT = 3.0


class HealthHandler(APIHandler):
    auth_required = False
    api = {"get": Op("Liveness: the process makes progress (no dependency is called); 503 when "
                     "its event loop is late or a store call hangs, so it should be restarted",
                     responses={200: HealthOut, 503: HealthOut}, tags=("ops",))}

    async def prepare(self) -> None:
        # Liveness must not wait for, or fail with, any dependency.
        self.refuse_oversized_body()

    async def get(self) -> None:
        watchdog = self.application.watchdog
        watchdog.start()  # idempotent: runs from the first probe on
        problems = watchdog.problems()
        if problems:
            self.write_json({"status": "unhealthy", "version": __version__, "problems": problems}, 503)
        else:
            self.write_json({"status": "ok", "version": __version__})


async def _check(name: str, check: Any) -> tuple[str, dict[str, Any]]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check.ping(), READY_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - any failure means "down"
        text = getattr(exc, "reason", None) or str(exc)  # StoreUnavailable keeps the cause apart
        reason = text.splitlines()[0][:200] if text else type(exc).__name__
        return name, {"status": "down", "backend": check.backend, "detail": reason}
    result: dict[str, Any] = {
        "status": "ok",
        "backend": check.backend,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if isinstance(detail, dict):  # a component may report itself degraded with a reason
        result.update(detail)
    return name, result


class ReadyHandler(APIHandler):
    api_key_methods = frozenset({"GET"})
    auth_required = False
    api = {"get": Op("Readiness of each component; 503 when a required one is down",
                     responses={200: ReadyOut, 503: ReadyOut}, tags=("ops",))}

    starting = False

    async def prepare(self) -> None:
        if self.application.services is None:  # still starting: say so, do not wait for it
            self.starting = True
            self.refuse_oversized_body()
            return
        await super().prepare()

    async def get(self) -> None:
        operator = is_operator(self)
        if self.starting:
            backend = "mongodb" if self.gust_settings.mongodb_uri else "sqlite"
            store = {"status": "down", "backend": backend, "detail": "starting"}
            self.write_json({"status": "down", "version": __version__, "components": {"store": store}}, 503)
            return
        checks = self.services.health_checks
        results = dict(await asyncio.gather(*(_check(n, c) for n, c in checks.items())))
        if not operator:
            # The cause of a failure can name internal hosts and ports: operators (METRICS_TOKEN,
            # or a probe on this host) read it; anyone else gets the status alone.
            for result in results.values():
                if result["status"] == "down" and "detail" in result:
                    result["detail"] = "unavailable"
        down = [n for n, r in results.items() if r["status"] == "down" and checks[n].required]
        degraded = any(r["status"] != "ok" for r in results.values())
        status = "down" if down else ("degraded" if degraded else "ok")
        self.write_json(
            {"status": status, "version": __version__, "components": results}, 503 if down else 200
        )


# Headers a proxy adds: a request that carries one was relayed, so it is not a local scraper.
_PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


class MetricsHandler(BaseHandler):
    api = {"get": Op("Prometheus metrics of this process. With METRICS_TOKEN: send it as "
                     "`Authorization: Bearer ...`; without it: only for scrapers on this host "
                     "(loopback, not relayed by a proxy)",
                     responses={200: CONTENT_TYPE_LATEST, 403: None}, tags=("ops",))}
    auth_required = False

    def get(self) -> None:
        if not self._allowed():
            self.set_status(403)
            self.set_header("Content-Type", "application/json; charset=utf-8")
            self.set_header("Cache-Control", "no-store")
            message = "metrics need METRICS_TOKEN as a bearer token, or a scraper on this host"
            self.finish(dumps({"error": {"code": "metrics_forbidden", "message": message,
                                         "request_id": self.request_id}}))
            return
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.application.metrics.registry))

    def _allowed(self) -> bool:
        return is_operator(self)


def is_operator(handler: BaseHandler) -> bool:
    """The request carries METRICS_TOKEN, or (without one) comes from this host, not via a proxy."""
    request = handler.request
    token = handler.gust_settings.metrics_token
    if token:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())
    if any(name in request.headers for name in _PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote_ip or "").is_loopback
    except ValueError:
        return False


default_handlers = [
    route("/health", HealthHandler),
    route("/health/ready", ReadyHandler),
    route("/metrics", MetricsHandler),
]
