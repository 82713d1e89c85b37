"""Chat titles: generated in the background after the first exchange, through the app."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gust.config import ConfigError
from gust.domain.models import Message
from gust.services.generation import provisional_title
from gust.services.titles import clean_title, is_provisional
from tests.streaming.helpers import stream
from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.env import require_env
from tests.support.fake_upstream import DEFAULT_TOKENS, FakeUpstream, Script
from tests.support.openapi_check import OpenAPIChecker
from tests.support.plugin import StartApp
from tests.support.wait import until

QUESTION = "Could you help me plan a three day trip to Paris in the spring, with museums and food?"


def title_requests(upstream: FakeUpstream) -> list[dict[str, Any]]:
    return upstream.plain_requests


async def title_of(api: Api, chat_id: str) -> str:
    resp = await api.get(f"/api/chats/{chat_id}")
    assert resp.status == 200
    title: str = resp.json["title"]
    return title


async def wait_until(condition: Any, what: str, timeout: float = 15) -> None:
    assert await until(condition, timeout=timeout), f"timed out waiting for {what}"


async def wait_title_change(api: Api, chat_id: str, old: str) -> str:
    async def changed() -> bool:
        return await title_of(api, chat_id) != old

    await wait_until(changed, f"a new title for chat {chat_id}")
    return await title_of(api, chat_id)


async def login(app: RunningApp, http: aiohttp.ClientSession, email: str = "titles@example.com") -> Api:
    return await Api(app.url, http, OpenAPIChecker(app.app.openapi)).register_and_login(email)


def two_models(directory: Path, upstream: FakeUpstream) -> Path:
    directory.mkdir()
    path = directory / "models.json"
    path.write_text(json.dumps([{"id": m, "base_url": upstream.url} for m in ("fake-model", "titler")]))
    return path


# -- the title a model's reply becomes -----------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ("Paris Spring Trip", "Paris Spring Trip"),
        ('"Paris Spring Trip."', "Paris Spring Trip"),
        ("Title: **Paris in Spring**\n\nThis title captures...", "Paris in Spring"),
        ("<think>The user wants a trip.</think>\n\n# Paris trip planning!", "Paris trip planning"),
        ("标题：巴黎春季旅行。", "巴黎春季旅行"),
        ("\n\n  'Three days   in Paris'  \n", "Three days in Paris"),
        ("word " * 12, ("word " * 12).strip()),
        ("word " * 13, ""),  # not a title: a model that went on answering
        ("The history of Rome is steeped in mythology, history, and legend. Rome was", ""),
        ("长" * 81, ""),
        ("", ""),
        ("<think>unfinished thoughts", ""),
    ],
)
def test_clean_title(raw: str, title: str) -> None:
    assert clean_title(raw) == title


def test_provisional_titles() -> None:
    first = Message(id="m1", chat_id="c", user_id="u", role="user", content="  Hello   there  ",
                    status="complete", created_at=1, updated_at=1)
    assert is_provisional("Hello there", [first])
    assert is_provisional("New chat", [first])
    assert not is_provisional("My own title", [first])


# -- through the app -------------------------------------------------------------------------------
async def test_first_exchange_gets_a_generated_title_with_the_chats_model(
    start_stream_app: StartApp, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    user = await login(await start_stream_app(generate_titles=True), http)
    upstream.script = Script(plain_text='Title: "Paris in spring, wörld ✓ 你好."')
    events = await stream(user, {"message": QUESTION})
    chat_id = events[0].data["chat_id"]
    provisional = provisional_title(QUESTION)
    title = await wait_title_change(user, chat_id, provisional)
    assert title == "Paris in spring, wörld ✓ 你好"
    [request] = title_requests(upstream)  # non-streaming, through the official openai client
    assert request["model"] == "fake-model" and request["max_tokens"] == 32
    assert request["messages"][0]["role"] == "system"
    assert QUESTION in request["messages"][1]["content"]
    assert "".join(DEFAULT_TOKENS) in request["messages"][1]["content"]  # the answer too
    listed = await user.get("/api/chats")
    assert listed.json["items"][0]["title"] == title  # what the sidebar shows

    # Later exchanges never retitle the chat.
    await stream(user, {"chat_id": chat_id, "message": "and in summer?"})
    other = await stream(user, {"message": "another topic"})
    await wait_title_change(user, other[0].data["chat_id"], "another topic")  # a control
    assert len(title_requests(upstream)) == 2
    assert await title_of(user, chat_id) == title


async def test_title_model_is_used_and_a_title_typed_by_the_user_wins(
    start_stream_app: StartApp, upstream: FakeUpstream, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    app = await start_stream_app(
        models_file=two_models(tmp_path / "two", upstream), title_model="titler", generate_titles=True
    )
    upstream.scripts["titler"] = Script(tokens=['"Spring ', "in Paris", '."'])
    user = await login(app, http)
    named = await user.post("/api/chats", {"title": "My Paris notes"})
    await stream(user, {"chat_id": named.json["id"], "message": QUESTION})
    events = await stream(user, {"message": QUESTION})
    chat_id = events[0].data["chat_id"]
    assert await wait_title_change(user, chat_id, provisional_title(QUESTION)) == "Spring in Paris"
    assert [r["model"] for r in title_requests(upstream)] == ["titler"]  # the user-named chat: none
    assert upstream.requests[0]["model"] == "fake-model"  # the answers used the chat's model
    assert await title_of(user, named.json["id"]) == "My Paris notes"


async def test_a_failed_title_leaves_the_provisional_one_and_is_logged(
    start_stream_app: StartApp,
    upstream: FakeUpstream,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = await start_stream_app(
        models_file=two_models(tmp_path / "two", upstream), title_model="titler", generate_titles=True
    )
    upstream.scripts["titler"] = Script(status=500)
    user = await login(app, http)
    caplog.set_level(logging.WARNING, logger="gust.services.titles")
    events = await stream(user, {"message": QUESTION})
    chat_id = events[0].data["chat_id"]

    async def logged() -> bool:
        return any("title for chat" in r.getMessage() for r in caplog.records)

    await wait_until(logged, "the title failure to be logged")
    [record] = [r for r in caplog.records if "title for chat" in r.getMessage()]
    assert record.levelno == logging.WARNING and chat_id in record.getMessage()
    assert "upstream_unavailable" in record.getMessage() and QUESTION not in record.getMessage()
    assert await title_of(user, chat_id) == provisional_title(QUESTION)
    assert events[-1].data["status"] == "complete"  # the answer itself is unaffected


async def test_unusable_title_model_refuses_to_start(upstream: FakeUpstream, tmp_path: Path) -> None:
    models = upstream.models_file(tmp_path)
    settings = make_settings(tmp_path / "data", models_file=models, title_model="gpt-9")
    with pytest.raises(ConfigError, match="TITLE_MODEL 'gpt-9' is not a usable"):
        await start_app(settings)


async def test_generate_titles_false_registers_no_title_hook(start_stream_app: StartApp) -> None:
    app = await start_stream_app(generate_titles=False)
    titles = app.services.titles
    hooks = app.services.generation.after_complete
    assert all(getattr(hook, "__self__", None) is not titles for hook in hooks)
    enabled = await start_stream_app(generate_titles=True)
    assert any(getattr(h, "__self__", None) is enabled.services.titles
               for h in enabled.services.generation.after_complete)


async def test_the_local_model_titles_by_rules_without_a_model_call(
    start_stream_app: StartApp, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    # TITLE_MODEL=local: the one local model must never be busy with a title; the fake model
    # answers, so any model call for the title would show up as a non-streaming request.
    app = await start_stream_app(generate_titles=True, local_model=True, title_model="local")
    user = await login(app, http)
    events = await stream(user, {"message": QUESTION, "model": "fake-model"})
    chat_id = events[0].data["chat_id"]
    title = await wait_title_change(user, chat_id, provisional_title(QUESTION))
    assert title == "Help me plan a three day trip to Paris in the spring, with…"
    assert title_requests(upstream) == []


async def test_a_model_reply_that_is_not_a_title_is_refused(
    start_stream_app: StartApp, upstream: FakeUpstream, http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="gust.services.titles")
    user = await login(await start_stream_app(generate_titles=True), http)
    chats = []
    # One word names no topic; the answer's own start is the model answering again.
    for n, reply in enumerate(["python", "Sure, here is a plan"], start=1):
        upstream.script = Script(tokens=["Sure, here is a plan"], plain_text=reply)
        chats.append((await stream(user, {"message": f"{QUESTION} {n}"}))[0].data["chat_id"])

        async def refused(count: int = n) -> bool:
            return sum("not a short title" in r.getMessage() for r in caplog.records) == count

        await wait_until(refused, f"refusal {n}")
    for n, chat_id in enumerate(chats, start=1):
        assert await title_of(user, chat_id) == provisional_title(f"{QUESTION} {n}")


def bearer(api: Api) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token}"}


@pytest.mark.parametrize("bus", ["memory", "redis"])
async def test_a_title_is_pushed_to_the_users_event_stream(
    start_stream_app: StartApp, upstream: FakeUpstream, http: aiohttp.ClientSession, bus: str
) -> None:
    redis = {"redis_url": require_env("TEST_REDIS_URL", "a Redis server")} if bus == "redis" else {}
    app = await start_stream_app(generate_titles=True, **redis)
    user = await login(app, http)
    other = await login(app, http, "someone-else@example.com")
    upstream.script = Script(plain_text="Paris in spring")
    async with http.get(f"{app.url}/api/events", headers=bearer(user)) as mine, \
            http.get(f"{app.url}/api/events", headers=bearer(other)) as theirs:
        assert mine.status == 200 and mine.headers["Content-Type"].startswith("text/event-stream")
        assert theirs.status == 200
        events = await stream(user, {"message": QUESTION})
        chat_id = events[0].data["chat_id"]
        title_event: dict[str, Any] | None = None
        seq = ""
        async with asyncio.timeout(15):
            async for raw in mine.content:
                line = raw.decode().strip()
                if line.startswith("id: "):
                    seq = line[4:]
                if line.startswith("data: "):
                    title_event = json.loads(line[6:])
                    break
        assert title_event == {"type": "title", "chat_id": chat_id, "title": "Paris in spring"}
        assert seq.isdigit()
        assert await title_of(user, chat_id) == "Paris in spring"
        # Another user hears nothing of it; a reconnect after the event gets nothing again.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                async for raw in theirs.content:
                    assert not raw.startswith(b"data:"), raw
    resume = {**bearer(user), "Last-Event-ID": str(int(seq) - 1)}
    async with http.get(f"{app.url}/api/events", headers=resume) as again:
        async with asyncio.timeout(15):
            async for raw in again.content:
                if raw.startswith(b"data: "):
                    assert json.loads(raw[6:])["chat_id"] == chat_id  # missed while away: replayed
                    break
    anonymous = await http.get(f"{app.url}/api/events")
    assert anonymous.status == 401
