"""Brute-force limits on login and registration: logins refused per (account, address) and per
address with 429 + Retry-After, attempts on one account from everywhere slowed down but never
refused (nobody can lock the owner out); shared by server processes through Redis."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.app_server import RunningApp, ServerProcess, make_settings, start_app
from tests.support.client import Api, Response
from tests.support.env import free_port, require_env
from tests.support.openapi_check import OpenAPIChecker

PASSWORD = "correct horse 1"


@pytest.fixture
async def limited(data_dir: Path) -> AsyncIterator[RunningApp]:
    """5 per (account, address), 8 per address, 10 per account from everywhere (then slowed),
    behind a trusted proxy so tests can vary the IP."""
    running = await start_app(make_settings(data_dir, rate_limit_login_per_minute=5,
                                            rate_limit_login_ip_per_minute=8,
                                            rate_limit_login_account_per_minute=10,
                                            login_slowdown_seconds=0.05, trusted_proxies="127.0.0.1"))
    yield running
    await running.stop()


@pytest.fixture
async def client(limited: RunningApp, http: aiohttp.ClientSession) -> Api:
    return Api(limited.url, http, OpenAPIChecker(limited.app.openapi))


def from_ip(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


async def login(api: Api, email: str, ip: str, password: str = "wrong password") -> Response:
    return await api.post("/api/auth/login", {"email": email, "password": password}, headers=from_ip(ip))


def assert_limited(resp: Response) -> None:
    assert (resp.status, resp.error_code) == (429, "rate_limited"), resp.text
    assert 1 <= int(resp.headers["Retry-After"]) <= 60


async def test_sixth_wrong_login_in_a_minute_is_429(client: Api) -> None:
    await client.post("/api/auth/register", {"email": "a@example.com", "password": PASSWORD})
    for _ in range(5):
        assert (await login(client, "a@example.com", "203.0.113.1")).status == 401
    assert_limited(await login(client, "a@example.com", "203.0.113.1"))
    # Even the right password waits: the limit is checked before the password.
    assert_limited(await login(client, "a@example.com", "203.0.113.1", PASSWORD))


async def test_wrong_logins_from_one_address_do_not_lock_the_owner_out(client: Api) -> None:
    await client.post("/api/auth/register", {"email": "owner@example.com", "password": PASSWORD})
    for _ in range(5):
        assert (await login(client, "owner@example.com", "203.0.113.66")).status == 401
    assert_limited(await login(client, "owner@example.com", "203.0.113.66"))
    assert_limited(await login(client, "owner@example.com", "203.0.113.66", PASSWORD))
    # The owner, from anywhere else, signs in at once.
    assert (await login(client, "owner@example.com", "198.51.100.1", PASSWORD)).status == 200


async def test_attempts_from_many_addresses_slow_the_account_but_never_refuse_it(client: Api) -> None:
    await client.post("/api/auth/register", {"email": "owner@example.com", "password": PASSWORD})
    # 5 addresses x 4 guesses: twice the account-wide threshold; none of them is refused.
    for i in range(5):
        for _ in range(4):
            assert (await login(client, "owner@example.com", f"198.51.100.{i}")).status == 401
    assert (await login(client, "owner@example.com", "198.51.100.200")).status == 401
    assert (await login(client, "owner@example.com", "198.51.100.201", PASSWORD)).status == 200
    # Another account from a fresh address is not affected either.
    assert (await login(client, "other@example.com", "198.51.100.100")).status == 401


async def test_limit_per_address_across_accounts(client: Api) -> None:
    for i in range(8):
        assert (await login(client, f"user{i}@example.com", "192.0.2.7")).status == 401
    assert_limited(await login(client, "user9@example.com", "192.0.2.7"))
    assert (await login(client, "user9@example.com", "192.0.2.8")).status == 401


async def test_unknown_and_known_accounts_are_limited_alike(client: Api) -> None:
    await client.post("/api/auth/register", {"email": "known@example.com", "password": PASSWORD},
                      headers=from_ip("192.0.2.50"))
    answers = []
    for email, ip in (("known@example.com", "192.0.2.60"), ("unknown@example.com", "192.0.2.70")):
        answers.append([(await login(client, email, ip)).status for i in range(6)])
    assert answers[0] == answers[1] == [401] * 5 + [429]


async def test_registration_is_limited_per_address(client: Api) -> None:
    for i in range(5):
        resp = await client.post("/api/auth/register", {"email": f"r{i}@example.com", "password": PASSWORD},
                                 headers=from_ip("192.0.2.99"))
        assert resp.status == 201, resp.text
    assert_limited(await client.post("/api/auth/register", {"email": "r9@example.com", "password": PASSWORD},
                                     headers=from_ip("192.0.2.99")))


async def test_untrusted_forwarded_for_is_ignored(data_dir: Path, http: aiohttp.ClientSession) -> None:
    """Without TRUSTED_PROXIES a client cannot dodge the per-IP limit with X-Forwarded-For."""
    app = await start_app(make_settings(data_dir, rate_limit_login_per_minute=5))
    try:
        api = Api(app.url, http, OpenAPIChecker(app.app.openapi))
        for i in range(20):  # 4 x 5 per address by default
            assert (await login(api, f"u{i}@example.com", f"203.0.113.{i}")).status == 401
        assert_limited(await login(api, "u99@example.com", "203.0.113.200"))
    finally:
        await app.stop()


async def test_zero_disables_the_limit(api: Api) -> None:
    """make_settings turns the limits off for other tests: 0 means no limit."""
    for _ in range(8):
        resp = await api.post("/api/auth/login", {"email": "a@example.com", "password": "nope nope"})
        assert resp.status == 401


async def test_limit_is_shared_by_two_processes_through_redis(tmp_path: Path) -> None:
    redis_url = require_env("TEST_REDIS_URL", "a Redis server")
    # Unique per run: the Redis server (and its counters) outlive this test.
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.9"
    env = {
        "REDIS_URL": redis_url,
        "AUTH_SECRET_KEY": "process-test-secret-key-0123456789-abcdefghij",
        "LOCAL_MODEL": "false",
        "RATE_LIMIT_LOGIN_PER_MINUTE": "5",
        "TRUSTED_PROXIES": "127.0.0.1",
    }
    first = ServerProcess.gust({**env, "DATA_DIR": str(tmp_path / "one")}, free_port())
    second = ServerProcess.gust({**env, "DATA_DIR": str(tmp_path / "two")}, free_port())
    try:
        await first.wait_ready()
        await second.wait_ready()
        async with aiohttp.ClientSession() as http:
            servers = [Api(first.url, http), Api(second.url, http)]
            statuses = [(await login(servers[i % 2], email, ip)).status for i in range(5)]
            assert statuses == [401] * 5
            assert_limited(await login(servers[1], email, ip))
            assert_limited(await login(servers[0], email, ip))
    finally:
        first.kill()
        second.kill()
