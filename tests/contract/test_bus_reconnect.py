"""The Redis bus across a Redis restart without persistence (a private server, stopped and started)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from gust.adapters.bus.redis_streams import RedisBus
from gust.ports.bus import BusUnavailable
from tests.support.redis_server import RedisServer
from tests.support.wait import until


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    redis_server = RedisServer.from_env(tmp_path / "redis")
    await redis_server.start()
    yield redis_server
    redis_server.kill()


@pytest.fixture
async def bus(server: RedisServer) -> AsyncIterator[RedisBus]:
    adapter = RedisBus(server.url, max_block=1)
    await adapter.start()
    yield adapter
    await adapter.close()


async def test_calls_fail_fast_while_redis_is_down_and_work_after_it_returns(
    bus: RedisBus, server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gust.adapters.bus.redis_streams")
    await bus.publish("g", [(1, {"type": "start"}), (2, {"type": "delta", "delta": "a"})])
    received: list[str] = []

    async def on_stop(generation_id: str) -> None:
        received.append(generation_id)

    listener = asyncio.ensure_future(bus.listen_stops(on_stop))
    try:
        server.stop()
        for _ in range(3):  # several failing calls in one outage
            with pytest.raises(BusUnavailable):
                await bus.read("g", 2, 0.1)
            with pytest.raises(BusUnavailable):
                await bus.publish("g", [(3, {"type": "delta", "delta": "b"})])
        await server.start()
        # Redis came back empty: a publish that continues the log is refused, the whole log is taken.
        assert await bus.publish("g", [(3, {"type": "delta", "delta": "b"})]) is False
        events: list[tuple[int, Mapping[str, Any]]] = [
            (1, {"type": "start"}), (2, {"type": "delta", "delta": "a"}), (3, {"type": "done"})
        ]
        assert await bus.publish("g", events) is True
        assert await bus.read("g", 1, 1) == events[1:]

        async def stop_arrives() -> bool:  # the listener subscribes again by itself
            await bus.request_stop("g-after")
            return "g-after" in received

        assert await until(stop_arrives, timeout=20, interval=0.3)
    finally:
        listener.cancel()
    lines = [r for r in caplog.records if r.name == "gust.adapters.bus.redis_streams"]
    assert not [r for r in lines if r.exc_info], "no tracebacks for an outage"
    assert 2 <= len(lines) <= 4, [r.getMessage() for r in lines]  # one outage: its start and its end
    assert "unreachable" in lines[0].getMessage()
    assert any("calls failed meanwhile" in r.getMessage() for r in lines)
