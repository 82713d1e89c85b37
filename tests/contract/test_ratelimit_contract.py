"""The rate-limiter contract: every test runs on the in-memory counters and on Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from gust.adapters.ratelimit.memory import MemoryRateLimiter
from gust.adapters.ratelimit.redis import RedisRateLimiter
from gust.domain.errors import RateLimited
from gust.ports.ratelimit import RateLimiter
from gust.services.ratelimit import Limit, RateLimitService
from tests.support.env import require_env


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    impl: RateLimiter
    if request.param == "memory":
        impl = MemoryRateLimiter()
    else:
        impl = RedisRateLimiter(require_env("TEST_REDIS_URL", "a Redis server"))
    await impl.start()
    yield impl
    await impl.close()


def unique(name: str) -> str:
    return f"test:{name}:{uuid.uuid4().hex}"  # Redis is shared between tests and runs


async def test_allows_up_to_the_limit_then_refuses(limiter: RateLimiter) -> None:
    await limiter.ping()
    key = unique("limit")
    hits = [await limiter.hit(key, 5, 60) for _ in range(7)]
    assert [h.allowed for h in hits] == [True] * 5 + [False] * 2
    assert [h.count for h in hits] == [1, 2, 3, 4, 5, 6, 7]
    assert all(h.retry_after == 0 for h in hits[:5])
    assert all(55 < h.retry_after <= 60 for h in hits[5:])


async def test_keys_are_independent(limiter: RateLimiter) -> None:
    a, b = unique("a"), unique("b")
    assert (await limiter.hit(a, 1, 60)).allowed
    assert not (await limiter.hit(a, 1, 60)).allowed
    assert (await limiter.hit(b, 1, 60)).allowed


async def test_window_ends_and_counting_restarts(limiter: RateLimiter) -> None:
    key = unique("window")
    assert (await limiter.hit(key, 1, 0.2)).allowed
    refused = await limiter.hit(key, 1, 0.2)
    assert not refused.allowed and 0 < refused.retry_after <= 0.2
    await asyncio.sleep(refused.retry_after + 0.05)  # waits out the window; asserts nothing on time
    again = await limiter.hit(key, 1, 0.2)
    assert again.allowed and again.count == 1


async def test_reset_forgets_a_key(limiter: RateLimiter) -> None:
    key = unique("reset")
    await limiter.hit(key, 1, 60)
    assert not (await limiter.hit(key, 1, 60)).allowed
    await limiter.reset(key)
    assert (await limiter.hit(key, 1, 60)).allowed


async def test_concurrent_hits_are_all_counted(limiter: RateLimiter) -> None:
    key = unique("concurrent")
    hits = await asyncio.gather(*(limiter.hit(key, 10, 60) for _ in range(25)))
    assert sorted(h.count for h in hits) == list(range(1, 26))
    assert sum(h.allowed for h in hits) == 10


async def test_service_raises_rate_limited_with_retry_after(limiter: RateLimiter) -> None:
    service = RateLimitService(limiter, {"login_ip": Limit(2, 60), "messages": Limit(0)})
    key = unique("svc")
    await service.check("login_ip", key)
    await service.check("login_ip", key)
    with pytest.raises(RateLimited) as raised:
        await service.check("login_ip", key)
    assert raised.value.status == 429 and 1 <= raised.value.retry_after <= 60
    for _ in range(50):  # 0 disables a bucket; unknown buckets never limit
        await service.check("messages", key)
        await service.check("no-such-bucket", key)


async def test_redis_counters_are_shared_between_clients() -> None:
    url = require_env("TEST_REDIS_URL", "a Redis server")
    first, second = RedisRateLimiter(url), RedisRateLimiter(url)
    await first.start()
    await second.start()
    try:
        key = unique("shared")
        assert (await first.hit(key, 2, 60)).allowed
        assert (await second.hit(key, 2, 60)).allowed
        assert not (await first.hit(key, 2, 60)).allowed
        assert first.shared and second.shared and not MemoryRateLimiter.shared
    finally:
        await first.close()
        await second.close()
