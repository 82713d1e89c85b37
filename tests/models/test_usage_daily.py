"""GET /api/usage/daily: per UTC day and per model, for the usage page's chart."""

from __future__ import annotations

import aiohttp

from tests.models.test_usage import login, stored_answers, usage_app
from tests.streaming.helpers import stream
from tests.support.app_server import RunningApp

__all__ = ["usage_app"]  # the fixture, imported to be shared


async def test_daily_usage_per_day_and_model(usage_app: RunningApp, http: aiohttp.ClientSession) -> None:
    admin = await login(usage_app, http, "admin@example.com")
    member = await login(usage_app, http, "member@example.com")
    await stream(admin, {"message": "q1", "model": "fast"})
    await stream(admin, {"message": "q2", "model": "smart"})
    await stream(member, {"message": "q3", "model": "fast"})

    daily = await admin.get("/api/usage/daily?days=7")
    assert daily.status == 200, daily.text
    days = daily.json["days"]
    assert len(days) == 7 and [d["date"] for d in days] == sorted(d["date"] for d in days)
    answered_on = {m["created_at"][:10] for m in await stored_answers(admin)}
    with_usage = {d["date"] for d in days if d["totals"]["messages"]}
    assert with_usage == answered_on
    assert sum(d["totals"]["messages"] for d in days) == 2
    models = {i["model"] for d in days for i in d["items"]}
    assert models == {"fast", "smart"}
    total = (await admin.get("/api/usage")).json["totals"]
    assert sum(d["totals"]["total_tokens"] for d in days) == total["total_tokens"]

    team = await admin.get("/api/usage/daily?days=3&all=true")
    assert team.status == 200 and team.json["scope"] == "team"
    assert sum(d["totals"]["messages"] for d in team.json["days"]) == 3

    refused = await member.get("/api/usage/daily?all=true")
    assert refused.status == 403 and refused.error_code == "admin_required"
    for query in ("days=0", "days=93", "days=x", "all=maybe", "other=1"):
        resp = await admin.get(f"/api/usage/daily?{query}")
        assert resp.status == 422, (query, resp.text)
    assert (await admin.as_user(None).get("/api/usage/daily", auth=False)).status == 401
