"""Token usage and cost: per answer (reported by the provider, else estimated) and reports.

An answer's `usage` is `{prompt_tokens, completion_tokens}` as the provider reported it.
When the provider reported nothing (no `include_usage` support, a stop, a failure after
some text), both counts are estimated with services/context.estimate_tokens and the
usage carries `"estimated": true`. `cost` (in the currency of the model's prices, USD
for the presets) is added when the model has a price; models without prices have no
cost rather than a made-up zero, and count as 0 in the reports' sums.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from gust.domain.errors import ValidationError
from gust.domain.models import Message, User, iso
from gust.ports.usage_store import UsageRow, UsageStore
from gust.services.context import FRAMING_TOKENS, estimate_tokens
from gust.services.model_registry import ModelSpec
from gust.services.teams import require_admin

COST_DIGITS = 8


def estimate_usage(messages: Iterable[Mapping[str, Any]], answer: str, reasoning: str) -> dict[str, Any]:
    """Usage estimated from the prompt sent and the text received, marked as estimated."""
    prompt = sum(estimate_tokens(m["content"]) for m in messages if isinstance(m.get("content"), str))
    completion = sum(estimate_tokens(text) - FRAMING_TOKENS for text in (answer, reasoning) if text)
    return {"prompt_tokens": prompt, "completion_tokens": max(completion, 1), "estimated": True}


def final_usage(
    spec: ModelSpec,
    reported: Mapping[str, int] | None,
    messages: Iterable[Mapping[str, Any]],
    answer: str,
    reasoning: str,
) -> dict[str, Any] | None:
    """The usage stored on an answer: reported, else estimated when any text came; priced."""
    usage: dict[str, Any]
    if reported is not None:
        usage = dict(reported)
    elif answer or reasoning:
        usage = estimate_usage(messages, answer, reasoning)
    else:
        return None  # nothing came back: nothing to count
    if spec.price_input_per_million or spec.price_output_per_million:
        usage["cost"] = round(spec.cost(usage), COST_DIGITS)
    return usage


# -- reports -----------------------------------------------------------------------------------
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# Every bound must be a moment a datetime can hold (years 1 to 9999): it is echoed back as ISO.
_EARLIEST = datetime(1, 1, 1, tzinfo=UTC).timestamp()
_LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()


def parse_bound(value: str | None, name: str, *, end: bool) -> float | None:
    """Epoch seconds from an ISO date, an ISO datetime (naive = UTC) or epoch seconds.

    A date as `to` means the end of that day, so `from=2026-01-01&to=2026-01-31` is January.
    Anything else, or a moment outside years 1 to 9999, is a 422 naming the parameter.
    """
    if value is None or value == "":
        return None
    text = value.strip()
    try:
        if _DATE.match(text):
            day = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
            seconds = (day + timedelta(days=1) if end else day).timestamp()
        elif re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)  # may be inf for 400 digits: caught by the range check
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            seconds = moment.timestamp()
    except (ValueError, OverflowError):  # OverflowError: 9999-12-31 plus a day, year 0 in UTC...
        raise ValidationError(
            f"{name} must be a date (2026-01-31), a date and time (2026-01-31T12:00:00Z) or epoch seconds",
            field=name,
        ) from None
    if not _EARLIEST <= seconds <= _LATEST:  # also false for nan and inf
        raise ValidationError(f"{name} must be between the years 1 and 9999", field=name)
    return seconds


@dataclass(slots=True)
class Totals:
    messages: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    estimated_messages: int = 0

    def add(self, row: UsageRow | Totals) -> None:
        self.messages += row.messages
        self.prompt_tokens += row.prompt_tokens
        self.completion_tokens += row.completion_tokens
        self.cost += row.cost
        self.estimated_messages += row.estimated_messages

    def public(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost": round(self.cost, COST_DIGITS),
            "estimated_messages": self.estimated_messages,
        }


@dataclass(slots=True)
class UsageReport:
    since: float | None
    until: float | None
    scope: str  # "user" or "team"
    by_model: dict[str, Totals] = field(default_factory=dict)
    totals: Totals = field(default_factory=Totals)
    # scope "team" only: user id -> (email, per-model totals, totals)
    by_user: dict[str, tuple[str | None, dict[str, Totals], Totals]] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "from": iso(self.since),
            "to": iso(self.until),
            "scope": self.scope,
            "items": _items(self.by_model),
            "totals": self.totals.public(),
        }
        if self.scope == "team":
            out["users"] = [
                {"user_id": uid, "email": email, "items": _items(models), "totals": totals.public()}
                for uid, (email, models, totals) in self.by_user.items()
            ]
        return out


def _items(by_model: dict[str, Totals]) -> list[dict[str, Any]]:
    return [{"model": model, **totals.public()} for model, totals in sorted(by_model.items())]


class UsageService:
    """Usage reports: the caller's own, or (admins) everyone's in their team."""

    UNKNOWN_MODEL = "unknown"

    def __init__(self, store: UsageStore) -> None:
        self.store = store

    async def report(
        self, user: User, *, since: float | None, until: float | None, all_users: bool = False
    ) -> UsageReport:
        if since is not None and until is not None and until <= since:
            raise ValidationError("to must be later than from", field="to")
        if all_users:
            require_admin(user)
        rows = await self.store.usage_rows(
            team_id=user.team_id, user_id=None if all_users else user.id, since=since, until=until
        )
        report = UsageReport(since, until, "team" if all_users else "user")
        for row in rows:
            model = row.model or self.UNKNOWN_MODEL
            report.by_model.setdefault(model, Totals()).add(row)
            report.totals.add(row)
            if all_users:
                entry = report.by_user.get(row.user_id)
                if entry is None:
                    member = await self.store.get_user(row.user_id)
                    entry = report.by_user[row.user_id] = (member.email if member else None, {}, Totals())
                entry[1].setdefault(model, Totals()).add(row)
                entry[2].add(row)
        return report


def continued_answer(
    prior: Message, content: str, reasoning: str, usage: dict[str, Any] | None
) -> tuple[str, str, dict[str, Any] | None]:
    """A continued answer's text and usage: what it had, plus what came now."""
    total = dict(prior.usage or {})
    for key, value in (usage or {}).items():
        old = total.get(key)
        both_numbers = isinstance(value, int | float) and isinstance(old, int | float)
        total[key] = old + value if both_numbers and not isinstance(value, bool) else value
    return prior.content + content, (prior.reasoning or "") + reasoning, total or None
