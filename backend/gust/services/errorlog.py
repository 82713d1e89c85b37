"""The admins' error log: server errors with where and when, never message text or secrets.

Only server errors (5xx) of signed-in requests are kept, each in its own team's log with a
quota per team (ERROR_LOG_MAX_ENTRIES): a 4xx is the client's mistake, not the server's, and
an anonymous request has no team whose admins should see it, so neither can fill, or wipe,
any team's log. Anonymous server errors stay in the server log (the access log line and the
traceback), like every other error.
"""

from __future__ import annotations

import asyncio
import logging

from gust.domain.accounts import ErrorLogEntry, Severity
from gust.domain.errors import StoreUnavailable
from gust.domain.ids import new_id, now
from gust.domain.models import User
from gust.ports.accounts_store import AccountsStore
from gust.services.teams import require_admin

log = logging.getLogger(__name__)


class ErrorLogService:
    def __init__(self, store: AccountsStore, *, keep: int) -> None:
        self.store = store
        self.keep = keep
        self._pending: set[asyncio.Task[None]] = set()

    async def record(
        self,
        *,
        status: int,
        method: str,
        route: str,
        request_id: str,
        error_type: str,
        severity: Severity = "error",
        user: User | None = None,
    ) -> None:
        if status < 500 or user is None:
            return
        entry = ErrorLogEntry(
            id=new_id(),
            created_at=now(),
            severity=severity,
            status=status,
            method=method,
            route=route,
            request_id=request_id,
            error_type=error_type,
            user_id=user.id,
            team_id=user.team_id,
        )
        try:
            await self.store.add_error(entry, keep=self.keep)
        except StoreUnavailable:  # the outage is logged once by the store; the access log has it
            log.debug("could not record error %s in the error log: the store is unavailable", request_id)
        except Exception:  # the store may be what failed; the access log still has the error
            log.warning("could not record error %s in the error log", request_id, exc_info=True)

    def record_soon(self, **fields: object) -> None:
        """Record from synchronous code (write_error): a task kept until it is done."""
        task = asyncio.get_running_loop().create_task(self.record(**fields))  # type: ignore[arg-type]
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for records in flight (shutdown, tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def list(self, admin: User, *, limit: int) -> list[ErrorLogEntry]:
        """The newest errors of the admin's team."""
        require_admin(admin)
        return await self.store.list_errors(team_id=admin.team_id, limit=limit)
