"""Health, readiness, metrics, request ids and security headers."""

from __future__ import annotations

import re

import pytest

from gust import __version__
from tests.support.app_server import RunningApp
from tests.support.client import Api

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


async def test_health_is_ok_with_version(api: Api) -> None:
    resp = await api.get("/health")
    assert resp.status == 200
    assert resp.json == {"status": "ok", "version": __version__}
    assert resp.headers["Cache-Control"] == "no-store"


async def test_ready_reports_each_component(api: Api) -> None:
    resp = await api.get("/health/ready")
    assert resp.status == 200, resp.text
    assert resp.json["status"] == "ok"
    assert resp.json["version"] == __version__
    store = resp.json["components"]["store"]
    assert store["status"] == "ok"
    assert store["backend"] == "sqlite"
    assert store["latency_ms"] >= 0


async def test_store_down_makes_ready_503_while_health_stays_200(app: RunningApp, api: Api) -> None:
    await app.services.store.close()
    ready = await api.get("/health/ready")
    assert ready.status == 503
    assert ready.json["status"] == "down"
    assert ready.json["components"]["store"]["status"] == "down"
    assert ready.json["components"]["store"]["backend"] == "sqlite"
    assert ready.json["components"]["store"]["detail"]
    health = await api.get("/health")
    assert health.status == 200
    assert health.json["status"] == "ok"


async def test_ready_shows_why_a_component_is_down_to_operators_only(app: RunningApp, api: Api) -> None:
    """The cause of a failure can name internal hosts: a request relayed by a proxy (not a
    probe on this host, no METRICS_TOKEN) gets the status without it."""
    await app.services.store.close()
    local = await api.get("/health/ready")
    assert local.json["components"]["store"]["detail"] != "unavailable"
    for header in ("X-Forwarded-For", "X-Real-IP", "Forwarded"):
        relayed = await api.request("GET", "/health/ready", headers={header: "203.0.113.9"})
        assert relayed.status == 503
        assert relayed.json["components"]["store"] == {
            "status": "down", "backend": "sqlite", "detail": "unavailable"
        }


async def test_metrics_count_requests_by_route_and_status(api: Api) -> None:
    for _ in range(3):
        await api.get("/health")
    await api.get("/api/nope")
    await api.get("/api/chats")
    resp = await api.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=")
    text = resp.text

    def sample(name: str, **labels: str) -> float:
        wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
        for line in text.splitlines():
            if line.startswith(name + "{"):
                got = line[len(name) + 1:line.index("}")]
                if sorted(got.split(",")) == sorted(wanted.split(",")):
                    return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"no sample {name}{{{wanted}}} in:\n{text}")

    assert sample("gust_http_requests_total", route="HealthHandler", method="GET", status="200") == 3
    assert sample("gust_http_requests_total", route="NotFoundHandler", method="GET", status="404") == 1
    assert sample("gust_http_requests_total", route="ChatsHandler", method="GET", status="401") == 1
    assert sample("gust_http_request_duration_seconds_count", route="HealthHandler", method="GET") == 3
    assert sample("gust_http_request_duration_seconds_bucket", route="HealthHandler", method="GET",
                  le="+Inf") == 3
    assert "# TYPE gust_http_request_duration_seconds histogram" in text
    assert "gust_active_generations" in text


async def test_request_id_is_echoed_when_valid(api: Api) -> None:
    resp = await api.get("/health", headers={"X-Request-ID": "abc-123.DEF:4_5"})
    assert resp.headers["X-Request-ID"] == "abc-123.DEF:4_5"
    error = await api.get("/api/nope", headers={"X-Request-ID": "req-404"})
    assert error.headers["X-Request-ID"] == "req-404"
    assert error.json["error"]["request_id"] == "req-404"


@pytest.mark.parametrize("incoming", [None, "has spaces", "x" * 65, "<script>", ""])
async def test_request_id_is_generated_when_absent_or_unsafe(api: Api, incoming: str | None) -> None:
    headers = {"X-Request-ID": incoming} if incoming is not None else {}
    first = await api.get("/health", headers=headers)
    second = await api.get("/health", headers=headers)
    rid = first.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-z]{26}", rid), rid
    assert rid != second.headers["X-Request-ID"]


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/health", "application/json"),
        ("/api/chats", "application/json"),  # a 401 error
        ("/api/nope", "application/json"),  # a 404 error
        ("/api/openapi.json", "application/json"),
        ("/", "text/html"),
        ("/api/docs", "text/html"),
        ("/metrics", "text/plain"),
    ],
)
async def test_security_headers_on_api_and_html(api: Api, path: str, content_type: str) -> None:
    resp = await api.get(path)
    assert resp.headers["Content-Type"].startswith(content_type)
    for name, value in SECURITY_HEADERS.items():
        assert resp.headers.get(name) == value, (path, name)
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self';" in csp  # no inline scripts, no CDN
    assert "Strict-Transport-Security" not in resp.headers  # plain http here
