"""Rate-limit counters in Redis, shared by every server process and host."""

from __future__ import annotations

import redis.asyncio as aioredis

from gust.adapters.redis_options import client_options
from gust.ports.ratelimit import Hit

PREFIX = "gust:rl:"

# INCR and the window's expiry in one step: a crash between them cannot leave a key
# without a TTL (which would block it forever).
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
"""


class RedisRateLimiter:
    name = "redis"
    shared = True

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: aioredis.Redis | None = None

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("RedisRateLimiter used before start()")
        return self._redis

    async def start(self) -> None:
        # Created here, on the running loop: a client belongs to the loop that made it.
        # Outlives a Redis restart (reconnects, retries with backoff): see redis_options.py.
        self._redis = aioredis.Redis.from_url(self.url, **client_options(socket_timeout=5, connect_timeout=5))

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def ping(self) -> None:
        await self.redis.ping()

    async def hit(self, key: str, limit: int, window: float) -> Hit:
        window_ms = max(1, int(window * 1000))
        count, ttl_ms = await self.redis.eval(_HIT, 1, PREFIX + key, str(window_ms))
        count, ttl_ms = int(count), int(ttl_ms)
        if count <= limit:
            return Hit(allowed=True, count=count, retry_after=0.0)
        return Hit(allowed=False, count=count, retry_after=ttl_ms / 1000)

    async def reset(self, key: str) -> None:
        await self.redis.delete(PREFIX + key)
