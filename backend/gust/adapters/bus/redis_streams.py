"""Redis bus: generation logs as Redis Streams, live and owner marks as keys, stops over pub/sub.

Each event is an entry whose stream id is `0-<seq>`, so "everything after seq N" is
one `XREAD ... 0-N`, the same question whichever process asks.

Surviving the server: the socket timeout is longer than every blocking read (XREAD
blocks at most `max_block` seconds, the SSE ping interval), connections are health
checked before reuse, and commands are retried a few times with exponential backoff
before a call raises `BusUnavailable`. The first failure of an outage logs one
warning and the first success after it logs one line with the outage's length and how
many calls failed; callers back off on their own without logging each failure.

A Redis restarted without persistence has lost every log. Publishing is one Lua call
that appends only events above the log's top (so a retried publish adds nothing twice)
and refuses to start a log in the middle: the owner then publishes its whole log again
from seq 1, so followers get no silent gap. The owner's heartbeat also reports logs
that vanished while it had nothing to publish.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions

from gust.adapters.redis_options import client_options
from gust.ports.bus import Beat, BusUnavailable, LoggedEvent

log = logging.getLogger(__name__)

STOP_CHANNEL = "gust:stop"
LOG_MAXLEN = 100_000  # events per generation kept at most (approximate trim)
RUNNING_TTL = 3600  # a running generation's log outlives a crashed owner by an hour at most
STOP_TTL = 120  # a stop request waits this long for an owner whose listener missed it
PUBLISH_CHUNK = 1000  # events per Lua call
SOCKET_MARGIN = 10.0  # socket timeout beyond the longest blocking read

_CLEAR_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1]: the log; ARGV: ttl, maxlen, then seq and payload pairs in order.
_PUBLISH = """
local top = 0
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #last > 0 then top = tonumber(string.match(last[1][1], '%-(%d+)$')) end
if top == 0 and tonumber(ARGV[3]) > 1 then return 0 end
for i = 3, #ARGV, 2 do
  if tonumber(ARGV[i]) > top then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '0-' .. ARGV[i], 'e', ARGV[i + 1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


def _log_key(generation_id: str) -> str:
    return f"gust:gen:{generation_id}"


def _owner_key(generation_id: str) -> str:
    return f"gust:gen:{generation_id}:owner"


def _stop_key(generation_id: str) -> str:
    return f"gust:gen:{generation_id}:stop"


def _reap_key(generation_id: str) -> str:
    return f"gust:gen:{generation_id}:reaped"


def _active_key(chat_id: str) -> str:
    return f"gust:chat:{chat_id}:active"


def _seq(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[1])


class _Outage:
    """One log line when Redis stops answering and one (with counts) when it is back."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.since: float | None = None
        self.failures = 0
        self.outages = 0  # since start, for tests and metrics

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.monotonic()
            self.outages += 1
            log.warning("redis bus unreachable (%s: %s); retrying with backoff", type(exc).__name__, exc)

    def succeeded(self) -> None:
        if self.since is not None:
            log.warning(
                "redis bus reachable again after %.1fs; %d calls failed meanwhile",
                time.monotonic() - self.since,
                self.failures,
            )
            self.since = None
            self.failures = 0


class RedisBus:
    name = "redis"
    shared = True

    def __init__(
        self,
        url: str,
        *,
        max_block: float = 15.0,
        socket_timeout: float | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.max_block = max_block
        self.socket_timeout = max(socket_timeout or 0.0, max_block + SOCKET_MARGIN)
        self.connect_timeout = connect_timeout
        self.outage = _Outage(url)
        self._redis: aioredis.Redis | None = None
        self._publish: Any = None
        self._closed = asyncio.Event()

    @property
    def redis(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("RedisBus used before start()")
        return self._redis

    async def start(self) -> None:
        # Created here, on the running loop: a client belongs to the loop that made it.
        self._redis = aioredis.Redis.from_url(
            self.url,
            decode_responses=False,
            **client_options(socket_timeout=self.socket_timeout, connect_timeout=self.connect_timeout),
        )
        self._publish = self._redis.register_script(_PUBLISH)

    async def close(self) -> None:
        self._closed.set()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Turn connection failures into BusUnavailable, logged once per outage."""
        try:
            yield
        except _ERRORS as exc:
            self.outage.failed(exc)
            raise BusUnavailable(str(exc)) from None
        self.outage.succeeded()

    async def ping(self) -> None:
        await self.redis.ping()

    async def publish(self, generation_id: str, events: list[LoggedEvent], ttl: float | None = None) -> bool:
        expire = max(1, int(ttl)) if ttl is not None else RUNNING_TTL
        async with self._guard():
            for start in range(0, len(events), PUBLISH_CHUNK):
                args: list[Any] = [expire, LOG_MAXLEN]
                for seq, event in events[start : start + PUBLISH_CHUNK]:
                    args += [seq, json.dumps(event, ensure_ascii=False, separators=(",", ":"))]
                if not await self._publish(keys=[_log_key(generation_id)], args=args):
                    return False
        return True

    async def read(self, generation_id: str, after: int, wait: float) -> list[LoggedEvent]:
        block = max(1, int(min(wait, self.max_block) * 1000))
        async with self._guard():
            reply: Any = await self.redis.xread(
                {_log_key(generation_id): f"0-{after}"}, block=block, count=1000
            )
        events: list[LoggedEvent] = []
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                events.append((_seq(entry_id), json.loads(fields[b"e"])))
        return events

    async def exists(self, generation_id: str) -> bool:
        async with self._guard():
            return bool(await self.redis.exists(_log_key(generation_id)))

    async def last_seq(self, generation_id: str) -> int:
        async with self._guard():
            last: Any = await self.redis.xrevrange(_log_key(generation_id), count=1)
        return _seq(last[0][0]) if last else 0

    async def expire(self, generation_id: str, ttl: float) -> None:
        async with self._guard():
            await self.redis.expire(_log_key(generation_id), max(1, int(ttl)))

    async def set_active(self, chat_id: str, generation_id: str, ttl: float) -> None:
        async with self._guard():
            await self.redis.set(_active_key(chat_id), generation_id, ex=max(1, int(ttl)))

    async def get_active(self, chat_id: str) -> str | None:
        async with self._guard():
            value: Any = await self.redis.get(_active_key(chat_id))
        return value.decode() if value else None

    async def clear_active(self, chat_id: str, generation_id: str) -> None:
        async with self._guard():
            await self.redis.eval(_CLEAR_IF_SAME, 1, _active_key(chat_id), generation_id)

    async def heartbeat(self, running: list[tuple[str, str]], ttl: float) -> Beat:
        beat = Beat()
        if not running:
            return beat
        seconds = max(1, int(ttl + 0.999))
        async with self._guard(), self.redis.pipeline(transaction=False) as pipe:
            for generation_id, chat_id in running:
                pipe.set(_owner_key(generation_id), b"1", ex=seconds)
                pipe.set(_active_key(chat_id), generation_id, ex=seconds)
                pipe.exists(_log_key(generation_id))
                pipe.exists(_stop_key(generation_id))
            replies: list[Any] = await pipe.execute()
        for i, (generation_id, _chat_id) in enumerate(running):
            if not replies[4 * i + 2]:
                beat.lost.add(generation_id)
            if replies[4 * i + 3]:
                beat.stops.add(generation_id)
        return beat

    async def release(self, generation_id: str) -> None:
        async with self._guard():
            await self.redis.delete(_owner_key(generation_id))

    async def owned(self, generation_ids: list[str]) -> set[str]:
        if not generation_ids:
            return set()
        async with self._guard(), self.redis.pipeline(transaction=False) as pipe:
            for generation_id in generation_ids:
                pipe.exists(_owner_key(generation_id))
            replies: list[Any] = await pipe.execute()
        return {g for g, alive in zip(generation_ids, replies, strict=True) if alive}

    async def claim_reap(self, generation_id: str, ttl: float) -> bool:
        async with self._guard():
            return bool(await self.redis.set(_reap_key(generation_id), b"1", nx=True, ex=max(1, int(ttl))))

    async def request_stop(self, generation_id: str) -> None:
        # The key is seen by the owner's next heartbeat if its listener missed the message
        # (reconnecting after a Redis restart): a stop is never answered and then lost.
        async with self._guard(), self.redis.pipeline(transaction=False) as pipe:
            pipe.set(_stop_key(generation_id), b"1", ex=STOP_TTL)
            pipe.publish(STOP_CHANNEL, generation_id)
            await pipe.execute()

    async def listen_stops(self, on_stop: Callable[[str], Awaitable[None]]) -> None:
        """Deliver stop requests until close(), subscribing again after every failure."""
        delay = 0.1
        while not self._closed.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                async with self._guard():
                    await pubsub.subscribe(STOP_CHANNEL)
                delay = 0.1
                while not self._closed.is_set():
                    async with self._guard():
                        message: Any = await pubsub.get_message(timeout=self.max_block)
                    if message and message.get("type") == "message":
                        try:
                            await on_stop(message["data"].decode())
                        except Exception:
                            log.exception("stop handler failed")
            except BusUnavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
