"""Usage and cost: stored per answer (reported or estimated), summed by GET /api/usage."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gust.services.context import estimate_tokens
from tests.streaming.helpers import stream
from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.openapi_check import OpenAPIChecker
from tests.support.plugin import StartApp

PRICES = {"fast": (1.0, 2.0), "smart": (10.0, 30.0)}  # per million input / output tokens


def models_file(directory: Path, upstream: FakeUpstream) -> Path:
    directory.mkdir()
    path = directory / "models.json"
    items: list[dict[str, Any]] = [
        {
            "id": model,
            "base_url": upstream.url,
            "price_input_per_million": price_in,
            "price_output_per_million": price_out,
        }
        for model, (price_in, price_out) in PRICES.items()
    ]
    items.append({"id": "free", "base_url": upstream.url})  # no prices: no cost
    path.write_text(json.dumps(items))
    return path


@pytest.fixture
async def usage_app(start_stream_app: StartApp, upstream: FakeUpstream, tmp_path: Path) -> RunningApp:
    upstream.scripts["fast"] = Script(tokens=["one ", "two ", "three"])  # reports usage
    upstream.scripts["smart"] = Script(tokens=["a longer ", "answer here"], include_usage=False)
    upstream.scripts["free"] = Script(tokens=["gratis"])
    return await start_stream_app(models_file=models_file(tmp_path / "usage", upstream))


async def login(app: RunningApp, http: aiohttp.ClientSession, email: str) -> Api:
    return await Api(app.url, http, OpenAPIChecker(app.app.openapi)).register_and_login(email)


async def stored_answers(api: Api) -> list[dict[str, Any]]:
    chats = await api.get("/api/chats?limit=100")
    answers = []
    for chat in chats.json["items"]:
        messages = await api.get(f"/api/chats/{chat['id']}/messages")
        answers += [m for m in messages.json["items"] if m["role"] == "assistant"]
    return answers


def sums(answers: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for m in answers:
        usage = m["usage"]
        if usage is None:
            continue  # failed before any text: nothing counted
        row = out.setdefault(
            m["model"],
            {"messages": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0, "estimated_messages": 0},
        )
        row["messages"] += 1
        row["prompt_tokens"] += usage["prompt_tokens"]
        row["completion_tokens"] += usage["completion_tokens"]
        row["cost"] += usage.get("cost", 0.0)
        row["estimated_messages"] += bool(usage.get("estimated"))
    return out


def check_report(report: dict[str, Any], expected: dict[str, dict[str, Any]]) -> None:
    got = {item["model"]: item for item in report["items"]}
    assert set(got) == set(expected)
    for model, want in expected.items():
        item = got[model]
        for key in ("messages", "prompt_tokens", "completion_tokens", "estimated_messages"):
            assert item[key] == want[key], (model, key)
        assert item["cost"] == pytest.approx(want["cost"], abs=1e-8)
        assert item["total_tokens"] == item["prompt_tokens"] + item["completion_tokens"]
    totals = report["totals"]
    assert totals["messages"] == sum(w["messages"] for w in expected.values())
    assert totals["prompt_tokens"] == sum(w["prompt_tokens"] for w in expected.values())
    assert totals["completion_tokens"] == sum(w["completion_tokens"] for w in expected.values())
    assert totals["cost"] == pytest.approx(sum(w["cost"] for w in expected.values()), abs=1e-8)


async def test_answers_store_reported_or_estimated_usage_and_cost(
    usage_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    user = await login(usage_app, http, "cost@example.com")
    fast = await stream(user, {"message": "count to three", "model": "fast"})
    usage = fast[-1].data["usage"]
    assert usage == {"prompt_tokens": 11, "completion_tokens": 3, "cost": (11 * 1.0 + 3 * 2.0) / 1_000_000}
    assert [e.data for e in fast if e.event == "usage"] == [{"type": "usage", **usage}]

    smart = await stream(user, {"message": "explain", "model": "smart"})
    usage = smart[-1].data["usage"]
    # No usage from the provider: estimated from what was sent and received, and marked so.
    prompt = estimate_tokens("explain")
    completion = estimate_tokens("a longer answer here") - 4
    assert usage == {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "estimated": True,
        "cost": pytest.approx((prompt * 10.0 + completion * 30.0) / 1_000_000),
    }
    free = await stream(user, {"message": "hi", "model": "free"})
    assert free[-1].data["usage"] == {"prompt_tokens": 11, "completion_tokens": 1}  # unpriced: no cost
    stored = {m["model"]: m["usage"] for m in await stored_answers(user)}
    answered = {"fast": fast, "smart": smart, "free": free}
    assert stored == {model: events[-1].data["usage"] for model, events in answered.items()}


async def test_usage_totals_match_the_stored_answers(
    usage_app: RunningApp, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    admin = await login(usage_app, http, "admin@example.com")  # the first account is the admin
    member = await login(usage_app, http, "member@example.com")
    for model, text in [("fast", "q1"), ("smart", "q2"), ("fast", "a longer question three"), ("free", "q4")]:
        events = await stream(admin, {"message": text, "model": model})
        assert events[-1].data["status"] == "complete"
    chat_id = events[0].data["chat_id"]
    await stream(admin, {"message": "follow-up with history", "model": "smart", "chat_id": chat_id})
    for model in ("smart", "fast"):
        await stream(member, {"message": "member question", "model": model})
    upstream.scripts["fast"] = Script(status=500)  # a failed answer with no text carries no usage
    failed = await stream(admin, {"message": "fails", "model": "fast"})
    assert failed[-1].data["status"] == "error" and failed[-1].data["usage"] is None

    admin_expected = sums(await stored_answers(admin))
    member_expected = sums(await stored_answers(member))
    assert admin_expected["fast"]["messages"] == 2 and admin_expected["smart"]["estimated_messages"] == 2

    mine = await admin.get("/api/usage")
    assert mine.status == 200, mine.text
    assert mine.json["scope"] == "user" and "users" not in mine.json
    check_report(mine.json, admin_expected)
    check_report((await member.get("/api/usage")).json, member_expected)

    team = await admin.get("/api/usage?all=true")
    assert team.status == 200 and team.json["scope"] == "team"
    combined: dict[str, dict[str, Any]] = {}
    for expected in (admin_expected, member_expected):
        for model, row in expected.items():
            into = combined.setdefault(model, dict.fromkeys(row, 0))
            for key, value in row.items():
                into[key] += value
    check_report(team.json, combined)
    per_user = {u["email"]: u for u in team.json["users"]}
    assert set(per_user) == {"admin@example.com", "member@example.com"}
    check_report(per_user["member@example.com"], member_expected)

    refused = await member.get("/api/usage?all=true")
    assert refused.status == 403 and refused.error_code == "admin_required"


async def test_usage_period_filters(usage_app: RunningApp, http: aiohttp.ClientSession) -> None:
    user = await login(usage_app, http, "period@example.com")
    await stream(user, {"message": "hi", "model": "fast"})
    now = time.time()
    today = time.strftime("%Y-%m-%d", time.gmtime(now))
    for query, count in [
        (f"?from={today}&to={today}", 1),  # a date as `to` is the end of that day
        (f"?from={now - 3600:.0f}", 1),
        (f"?from={now + 3600:.0f}", 0),
        (f"?to={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now - 3600))}", 0),
        ("?from=2000-01-01T00:00:00%2B02:00", 1),
    ]:
        resp = await user.get("/api/usage" + query)
        assert resp.status == 200, (query, resp.text)
        assert resp.json["totals"]["messages"] == count, query
    resp = await user.get("/api/usage?from=yesterday")
    assert resp.status == 422 and resp.json["error"]["field"] == "from"
    resp = await user.get(f"/api/usage?from={today}&to=2000-01-01")
    assert resp.status == 422 and resp.json["error"]["field"] == "to"
    resp = await user.as_user(None).get("/api/usage", auth=False)
    assert resp.status == 401
