"""Options every Redis client of Gust is built with: it must outlive a Redis restart.

redis-py's defaults do not: a 5 s socket timeout (shorter than a blocking XREAD) and,
through `from_url`, no retry, so the first command on a pooled connection that Redis
closed (it restarted) fails. These options reconnect and retry a few times with
exponential backoff, health-check idle connections before reuse, and keep every read
timeout above the longest blocking call.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

HEALTH_CHECK_INTERVAL = 10  # seconds idle after which a pooled connection is PINGed before use


def client_options(*, socket_timeout: float, connect_timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": connect_timeout,
        "socket_keepalive": True,
        # Three retries, 0.1 s to 0.4 s apart: a blip is absorbed, an outage fails in < 1 s.
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        "health_check_interval": HEALTH_CHECK_INTERVAL,
    }
