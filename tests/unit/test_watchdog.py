"""The liveness watchdog: a late event loop and a stuck store call are reported."""

from __future__ import annotations

import asyncio
import time

from gust.adapters.store.guard import StoreCalls
from gust.services.watchdog import Watchdog
from tests.support.wait import until


async def test_a_blocked_event_loop_is_reported_then_forgotten() -> None:
    watchdog = Watchdog(loop_lag_limit=0.3, stuck_store_limit=60, interval=0.05)
    watchdog.start()
    try:
        await asyncio.sleep(0.1)
        assert watchdog.problems() == []
        time.sleep(0.6)  # noqa: ASYNC251 - the point: something blocks the loop
        problems = watchdog.problems()
        assert problems and "event loop" in problems[0]
        # Once the loop runs on time again, liveness is restored.
        assert await until(lambda: watchdog.problems() == [], timeout=5)
    finally:
        await watchdog.stop()


async def test_a_store_call_in_flight_past_the_limit_is_reported() -> None:
    calls = StoreCalls("test")
    watchdog = Watchdog(loop_lag_limit=60, stuck_store_limit=0.2, oldest_store_call=calls.oldest)
    token = calls.begin("update_message")
    assert watchdog.problems() == []
    assert await until(lambda: bool(watchdog.problems()), timeout=5)
    assert "store call update_message" in watchdog.problems()[0]
    calls.end(token)
    assert watchdog.problems() == []
