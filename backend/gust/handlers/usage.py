"""Token usage and cost per model: mine, or my whole team's (admins)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from gust.handlers.base import APIHandler
from gust.handlers.routing import Op, route
from gust.handlers.schemas import ErrorOut, Strict
from gust.services.usage import UsageService, parse_bound

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
        service = self.services.usage
        if service is None:
            raise RuntimeError("usage service not configured")
        return service

    async def get(self) -> None:
        query = self.query_model(UsageQuery)
        report = await self.usage.report(
            self.user,
            since=parse_bound(query.since, "from", end=False),
            until=parse_bound(query.until, "to", end=True),
            all_users=query.all,
        )
        self.write_json(report.public())


default_handlers = [route("/api/usage", UsageHandler)]
