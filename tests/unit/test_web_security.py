"""Proxy-aware scheme and client address, and origin normalisation (pure functions)."""

from __future__ import annotations

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

from gust.handlers.web_security import client_ip, origin_of, request_scheme


def request(remote_ip: str, **headers: str) -> HTTPServerRequest:
    req = HTTPServerRequest(
        start_line=RequestStartLine("GET", "/", "HTTP/1.1"),
        headers=HTTPHeaders({"Host": "gust.test", **{k.replace("_", "-"): v for k, v in headers.items()}}),
    )
    req.remote_ip = remote_ip
    return req


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Chat.Example.com/", "https://chat.example.com"),
        ("https://chat.example.com:443/app?x=1", "https://chat.example.com"),
        ("http://chat.example.com:80", "http://chat.example.com"),
        ("http://127.0.0.1:8100", "http://127.0.0.1:8100"),
        ("http://[::1]:8100/x", "http://[::1]:8100"),
        ("null", None),
        ("javascript:alert(1)", None),
        ("https://", None),
        ("https://host:99999", None),
        (None, None),
    ],
)
def test_origin_of(url: str | None, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    trusted = ("10.0.0.0/8", "::1")
    forwarded = {"X_Forwarded_Proto": "https", "X_Forwarded_For": "198.51.100.7, 10.1.2.3"}
    assert request_scheme(request("10.0.0.5", **forwarded), trusted) == "https"
    assert request_scheme(request("::1", **forwarded), trusted) == "https"
    assert request_scheme(request("203.0.113.9", **forwarded), trusted) == "http"
    assert request_scheme(request("10.0.0.5", X_Forwarded_Proto="gopher"), trusted) == "http"
    # The right-most hop that is not a trusted proxy is the client; spoofed left hops are ignored.
    assert client_ip(request("10.0.0.5", **forwarded), trusted) == "198.51.100.7"
    spoofed = {"X_Forwarded_For": "1.1.1.1, 198.51.100.7, 10.9.9.9"}
    assert client_ip(request("10.0.0.5", **spoofed), trusted) == "198.51.100.7"
    assert client_ip(request("203.0.113.9", **forwarded), trusted) == "203.0.113.9"
    assert client_ip(request("10.0.0.5"), trusted) == "10.0.0.5"
    assert client_ip(request("10.0.0.5", **forwarded), ()) == "10.0.0.5"
