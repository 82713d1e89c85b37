"""Abuse limits: named buckets of hits per key (IP, account, user) over a time window."""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

from gust.domain.errors import RateLimited
from gust.ports.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# Bucket names. Logins are refused per (account, address) and per address; attempts on one
# account from everywhere only slow it down (LOGIN_ACCOUNT), so nobody can lock its owner out.
# Registration is limited per address and per account (email); password changes per user;
# message sends per user.
LOGIN_IP = "login_ip"
LOGIN_ACCOUNT_IP = "login_account_ip"
LOGIN_ACCOUNT = "login_account"
PASSWORD_CHANGE = "password_change"  # noqa: S105 - a bucket name
REGISTER_IP = "register_ip"
REGISTER_ACCOUNT = "register_account"
MESSAGES = "messages"


@dataclass(frozen=True, slots=True)
class Limit:
    per_window: int  # 0 disables the bucket
    window: float = 60.0


class RateLimitService:
    """`await rate_limits.check(bucket, key)` counts one hit and raises RateLimited (429 with
    Retry-After) when the bucket's limit is exceeded. Unknown or disabled buckets never limit."""

    def __init__(self, limiter: RateLimiter, limits: Mapping[str, Limit]) -> None:
        self.limiter = limiter
        self.limits = dict(limits)

    @staticmethod
    def _key(bucket: str, key: str) -> str:
        # Hashed: keys are emails and IPs, which have no business sitting in Redis in clear.
        digest = hashlib.sha256(f"{bucket}\x00{key}".encode()).hexdigest()[:32]
        return f"{bucket}:{digest}"

    async def check(self, bucket: str, key: str) -> None:
        """Count one hit of `key` in `bucket`; raise RateLimited when over the limit."""
        limit = self.limits.get(bucket)
        if limit is None or limit.per_window <= 0:
            return
        try:
            hit = await self.limiter.hit(self._key(bucket, key), limit.per_window, limit.window)
        except Exception:  # a counter outage must not take logins down with it
            log.exception("rate limiter %s failed; bucket %s not enforced", self.limiter.name, bucket)
            return
        if not hit.allowed:
            retry_after = max(1, math.ceil(hit.retry_after))
            raise RateLimited(
                f"too many requests; retry in {retry_after} s", retry_after=retry_after, bucket=bucket
            )

    async def within(self, bucket: str, key: str) -> bool:
        """Count one hit of `key` in `bucket`; False when over the limit (never raises)."""
        limit = self.limits.get(bucket)
        if limit is None or limit.per_window <= 0:
            return True
        try:
            hit = await self.limiter.hit(self._key(bucket, key), limit.per_window, limit.window)
        except Exception:
            log.exception("rate limiter %s failed; bucket %s not enforced", self.limiter.name, bucket)
            return True
        return hit.allowed

    async def reset(self, bucket: str, key: str) -> None:
        await self.limiter.reset(self._key(bucket, key))
