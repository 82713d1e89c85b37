"""Token usage and cost per model: mine, or my whole team's (admins)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gust.handlers.base import APIHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import ErrorOut, Strict
from gust.services.usage import UsageService, parse_bound
from gust.services.usage_daily import MAX_DAYS, daily_usage

BOUND = (
    "A date (2026-01-31; as `to`, the end of that day), a date and time "
    "(ISO 8601, UTC when no offset) or epoch seconds"
)


class UsageQuery(Strict):
    since: str | None = Field(None, alias="from", max_length=40, description="Start (inclusive). " + BOUND)
    until: str | None = Field(None, alias="to", max_length=40, description="End (exclusive). " + BOUND)
    all: bool = Field(False, description="Every member of my team (admins only)")


class UsageTotalsOut(BaseModel):
    messages: int = Field(description="Answers that carry usage")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float = Field(description="Sum of the answers' costs at the model's prices then (0 when unpriced)")
    estimated_messages: int = Field(description="Answers whose usage was estimated, not reported")


class ModelUsageOut(UsageTotalsOut):
    model: str


class UserUsageOut(BaseModel):
    user_id: str
    email: str | None
    items: list[ModelUsageOut]
    totals: UsageTotalsOut


class UsageOut(BaseModel):
    """Usage per model over the period; with all=true, per member too."""

    from_: str | None = Field(alias="from")
    to: str | None
    scope: str = Field(description="user (mine) or team (all=true)")
    items: list[ModelUsageOut]
    totals: UsageTotalsOut
    users: list[UserUsageOut] | None = None


class UsageHandler(APIHandler):
    api = {
        "get": Op(
            "Token usage and cost per model over a period: mine, or my team's with all=true (admins)",
            query=UsageQuery,
            responses={200: UsageOut, 403: ErrorOut},
            tags=("models",),
        )
    }

    @property
    def usage(self) -> UsageService:
        return self.services.usage

    async def get(self) -> None:
        query = self.query_model(UsageQuery)
        report = await self.usage.report(
            self.user,
            since=parse_bound(query.since, "from", end=False),
            until=parse_bound(query.until, "to", end=True),
            all_users=query.all,
        )
        self.write_json(report.public())


class DailyQuery(Strict):
    days: int = Field(14, ge=1, le=MAX_DAYS, description="How many UTC days, ending today")
    all: bool = Field(False, description="Every member of my team (admins only)")


class DayUsageOut(BaseModel):
    date: str
    items: list[ModelUsageOut]
    totals: UsageTotalsOut


class DailyUsageOut(BaseModel):
    """Usage per UTC day (oldest first, today last) and per model: the usage page's chart."""

    scope: str
    days: list[DayUsageOut]


class DailyUsageHandler(UsageHandler):
    api = {
        "get": Op(
            "Token usage and cost per UTC day and per model over the last `days` days: mine, or my "
            "team's with all=true (admins)",
            query=DailyQuery,
            responses={200: DailyUsageOut, 403: ErrorOut, 422: ErrorOut},
            tags=("models",),
        )
    }

    async def get(self) -> None:
        query = self.query_model(DailyQuery)
        report = await daily_usage(self.usage, self.user, days=query.days, all_users=query.all)
        self.write_json(report.public())


default_handlers = [route("/api/usage", UsageHandler), route("/api/usage/daily", DailyUsageHandler)]
