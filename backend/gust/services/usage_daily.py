"""Usage per UTC day over the last N days (for the usage page's chart): one report per day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gust.domain.errors import ValidationError
from gust.domain.models import User
from gust.services.usage import UsageReport, UsageService

MAX_DAYS = 92


@dataclass(slots=True)
class DailyUsage:
    days: list[tuple[date, UsageReport]]
    scope: str

    def public(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "days": [
                {"date": day.isoformat(), "items": report.public()["items"], "totals": report.totals.public()}
                for day, report in self.days
            ],
        }


async def daily_usage(
    usage: UsageService, user: User, *, days: int, all_users: bool, today: date | None = None
) -> DailyUsage:
    """Oldest day first, today (UTC) last; days without usage are present with zeros."""
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"days must be between 1 and {MAX_DAYS}", field="days")
    last = today or datetime.now(UTC).date()
    out: list[tuple[date, UsageReport]] = []
    for back in range(days - 1, -1, -1):
        day = last - timedelta(days=back)
        start = datetime.combine(day, datetime.min.time(), UTC).timestamp()
        report = await usage.report(user, since=start, until=start + 86_400, all_users=all_users)
        out.append((day, report))
    return DailyUsage(out, "team" if all_users else "user")
