"""Helpers shared by the streaming tests."""

from __future__ import annotations

import json
from typing import Any

from gust.domain.models import Message
from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.sse import SSEEvent, read_events
from tests.support.wait import until


def auth(api: Api, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json", **extra}


async def stream(api: Api, body: dict[str, Any], *, stop_after: int | None = None) -> list[SSEEvent]:
    """POST /chat/stream and read events until done (or `stop_after` events, then hang up)."""
    async with api.session.post(
        api.base_url + "/chat/stream", data=json.dumps(body), headers=auth(api)
    ) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["Cache-Control"] == "no-cache"
        assert resp.headers["X-Accel-Buffering"] == "no"
        return await read_events(resp, stop_after=stop_after)


async def follow(api: Api, chat_id: str, last_event_id: str | None = None) -> list[SSEEvent]:
    headers = auth(api)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with api.session.get(api.base_url + f"/api/chats/{chat_id}/events", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await read_events(resp)


async def wait_final(app: RunningApp, user_id: str, message_id: str, timeout: float = 20) -> Message:
    """Wait until a message leaves the `streaming` status (the job ran to its end)."""
    latest: list[Message] = []

    async def final() -> bool:
        message = await app.services.store.get_message(user_id, message_id)
        assert message is not None
        latest[:] = [message]
        return message.status != "streaming"

    assert await until(final, timeout=timeout), f"message {message_id} still streaming after {timeout}s"
    return latest[0]


async def user_id(api: Api) -> str:
    me = await api.get("/api/auth/me")
    uid: str = me.json["id"]
    return uid


def deltas(events: list[SSEEvent]) -> str:
    return "".join(e.data["delta"] for e in events if e.event == "delta")


def kinds(events: list[SSEEvent]) -> list[str]:
    out: list[str] = []
    for e in events:
        if not out or out[-1] != e.event or e.event not in ("delta", "reasoning"):
            out.append(e.event)
    return out
