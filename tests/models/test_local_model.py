"""With no key and no models file, Gust chats through the bundled offline model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.streaming.helpers import deltas, stream, user_id, wait_final
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.openapi_check import OpenAPIChecker


@pytest.fixture
async def offline_app(tmp_path: Path) -> AsyncIterator[RunningApp]:
    """The app as `./run.sh` starts it on a fresh machine: no key, no MODELS_FILE."""
    app = await start_app(make_settings(tmp_path / "data", local_model=True))
    yield app
    await app.stop()


@pytest.fixture
async def offline_user(offline_app: RunningApp, http: aiohttp.ClientSession) -> Api:
    api = Api(offline_app.url, http, OpenAPIChecker(offline_app.app.openapi))
    return await api.register_and_login("offline@example.com")


async def test_without_keys_the_local_model_is_the_default(offline_user: Api) -> None:
    resp = await offline_user.get("/api/models")
    assert resp.status == 200
    assert resp.json["default"] == "local"
    assert [m["id"] for m in resp.json["items"]] == ["local"]
    local = resp.json["items"][0]
    assert local["provider"] == "local" and local["context_window"] == 2048


async def test_a_configured_key_makes_its_model_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-not-used")
    app = await start_app(make_settings(tmp_path / "data", local_model=True))
    try:
        user = await Api(app.url, http).register_and_login("keyed@example.com")
        resp = await user.get("/api/models")
        ids = [m["id"] for m in resp.json["items"]]
        assert resp.json["default"] == "deepseek-chat"
        assert ids == ["deepseek-chat", "deepseek-reasoner", "local"]
        reasoner = resp.json["items"][1]
        assert "reasoning" in reasoner["features"]
    finally:
        await app.stop()


@pytest.mark.local_model
async def test_local_model_streams_a_real_answer(offline_app: RunningApp, offline_user: Api) -> None:
    events = await stream(offline_user, {"message": "What is the capital of France?", "max_tokens": 24})
    start, done = events[0].data, events[-1].data
    assert start["model"] == "local"
    assert done["status"] == "complete", events
    pieces = [e.data["delta"] for e in events if e.event == "delta"]
    assert pieces and all(pieces), "non-empty delta events"
    answer = deltas(events)
    assert answer.strip()
    stored = await wait_final(offline_app, await user_id(offline_user), start["message_id"])
    assert stored.status == "complete" and stored.model == "local"
    assert stored.content == answer
    assert stored.usage is not None and stored.usage["completion_tokens"] > 0


def test_local_answers_are_long_enough_and_the_models_file_can_change_that(tmp_path: Path) -> None:
    from gust.services.model_registry import local_entry
    from gust.wiring import model_entries

    assert (local_entry().default_max_tokens or 0) >= 1024  # 256 cut normal answers mid-sentence
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n  - id: local\n    provider: local\n    upstream_model: smollm2-135m-instruct\n"
        "    context_window: 4096\n    max_output_tokens: 2000\n    default_max_tokens: 1500\n"
    )
    entries = model_entries(make_settings(tmp_path / "data", local_model=True, models_file=models), {})
    assert [(e.id, e.default_max_tokens) for e in entries] == [("local", 1500)]
