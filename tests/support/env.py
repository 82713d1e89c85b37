"""Real servers come from TEST_* variables: skipped locally when absent, a failure in CI."""

from __future__ import annotations

import os
import socket

import pytest
from aiohttp import web

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_env(name: str, what: str) -> str:
    value = os.environ.get(name)
    if value:
        return value
    if IN_CI:
        pytest.fail(f"{name} is not set: CI must provide {what} (see .ci/run)")
    pytest.skip(f"{name} not set: no {what} to test against (.ci/run provides one)")


def bound_port(runner: web.BaseRunner) -> int:
    """The port an aiohttp runner's first site listens on (started on port 0)."""
    port: int = runner.addresses[0][1]
    return port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
