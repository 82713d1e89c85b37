"""Redis bus: generation logs as Redis Streams, live marks as keys, stops over pub/sub.

Each event is an entry whose stream id is `0-<seq>`, so "everything after seq N" is
one `XREAD ... 0-N`, the same question whichever process asks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from gust.ports.bus import LoggedEvent

log = logging.getLogger(__name__)

STOP_CHANNEL = "gust:stop"
LOG_MAXLEN = 100_000  # events per generation kept at most (approximate trim)
RUNNING_TTL = 3600  # a running generation's log outlives a crashed owner by an hour at most

_CLEAR_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _log_key(generation_id: str) -> str:
    return f"gust:gen:{generation_id}"


def _active_key(chat_id: str) -> str:
    return f"gust:chat:{chat_id}:active"


class RedisBus:
    name = "redis"
    shared = True

    def __init__(self, url: str) -> None:
        self.url = url
        self._redis: aioredis.Redis | None = None
        self._pubsub: Any = None

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("RedisBus used before start()")
        return self._redis

    async def start(self) -> None:
        # Created here, on the running loop: a client belongs to the loop that made it.
        self._redis = aioredis.Redis.from_url(
            self.url, decode_responses=False, socket_connect_timeout=5, health_check_interval=30
        )

    async def close(self) -> None:
        if self._pubsub is not None:
            await self._pubsub.aclose()
            self._pubsub = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def ping(self) -> None:
        await self.redis.ping()

    async def publish(self, generation_id: str, events: list[LoggedEvent]) -> None:
        key = _log_key(generation_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            for seq, event in events:
                pipe.xadd(
                    key,
                    {"e": json.dumps(event, ensure_ascii=False, separators=(",", ":"))},
                    id=f"0-{seq}",
                    maxlen=LOG_MAXLEN,
                    approximate=True,
                )
            pipe.expire(key, RUNNING_TTL)
            await pipe.execute()

    async def read(self, generation_id: str, after: int, wait: float) -> list[LoggedEvent]:
        block = max(1, int(wait * 1000))
        reply: Any = await self.redis.xread({_log_key(generation_id): f"0-{after}"}, block=block, count=1000)
        events: list[LoggedEvent] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                seq = int(entry_id.split(b"-")[1])
                events.append((seq, json.loads(fields[b"e"])))
        return events

    async def expire(self, generation_id: str, ttl: float) -> None:
        await self.redis.expire(_log_key(generation_id), max(1, int(ttl)))

    async def set_active(self, chat_id: str, generation_id: str, ttl: float) -> None:
        await self.redis.set(_active_key(chat_id), generation_id, ex=max(1, int(ttl)))

    async def get_active(self, chat_id: str) -> str | None:
        value: Any = await self.redis.get(_active_key(chat_id))
        return value.decode() if value else None

    async def clear_active(self, chat_id: str, generation_id: str) -> None:
        await self.redis.eval(_CLEAR_IF_SAME, 1, _active_key(chat_id), generation_id)

    async def request_stop(self, generation_id: str) -> None:
        await self.redis.publish(STOP_CHANNEL, generation_id)

    async def listen_stops(self, on_stop: Callable[[str], Awaitable[None]]) -> None:
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(STOP_CHANNEL)
        async for message in self._pubsub.listen():
            if message and message.get("type") == "message":
                try:
                    await on_stop(message["data"].decode())
                except Exception:
                    log.exception("stop handler failed")
