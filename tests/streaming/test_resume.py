"""Answers survive dropped connections: disconnect, resume with Last-Event-ID, many tabs."""

from __future__ import annotations

import asyncio

from tests.streaming.helpers import deltas, follow, stream, user_id, wait_final
from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.plugin import StartApp
from tests.support.wait import until

TOKENS = [f"t{i} " for i in range(30)]


async def test_disconnect_after_three_deltas_the_answer_completes(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    upstream.script = Script(tokens=TOKENS, delay=0.01)
    events = await stream(user, {"message": "go"}, stop_after=4)  # start + 3 deltas, then hang up
    assert [e.event for e in events] == ["start", "delta", "delta", "delta"]
    final = await wait_final(stream_app, await user_id(user), events[0].data["message_id"])
    assert final.status == "complete"
    assert final.content == "".join(TOKENS)
    assert upstream.disconnects == 0  # the job kept reading upstream after the client left


async def test_last_event_id_mid_stream_replays_exactly_the_missed_events(
    stream_app: RunningApp, user: Api, upstream: FakeUpstream
) -> None:
    upstream.script = Script(tokens=TOKENS, delay=0.02)
    first = await stream(user, {"message": "go"}, stop_after=6)
    chat_id = first[0].data["chat_id"]
    rest = await follow(user, chat_id, last_event_id=first[-1].id)
    assert rest[0].seq == first[-1].seq + 1
    seqs = [e.seq for e in first + rest]
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    assert deltas(first + rest) == "".join(TOKENS)
    assert rest[-1].event == "done"


async def test_resume_at_every_point_and_after_done(user: Api, upstream: FakeUpstream) -> None:
    upstream.script = Script(tokens=TOKENS[:8])
    full = await stream(user, {"message": "go"})
    chat_id = full[0].data["chat_id"]
    for cut in range(1, len(full)):
        rest = await follow(user, chat_id, last_event_id=full[cut - 1].id)
        assert [(e.seq, e.event, e.data) for e in rest] == [(e.seq, e.event, e.data) for e in full[cut:]]
    # Reconnecting after done within the grace period: just the final events.
    assert await follow(user, chat_id, last_event_id=full[-1].id) == []


async def test_after_the_grace_period_done_comes_from_the_store(
    start_stream_app: StartApp, upstream: FakeUpstream
) -> None:
    app = await start_stream_app(stream_grace_period=0.05)
    import aiohttp

    async with aiohttp.ClientSession() as http:
        api = await app.sign_up(http, "g@example.com")
        full = await stream(api, {"message": "go"})
        chat_id, message_id = full[0].data["chat_id"], full[0].data["message_id"]
        hub = app.services.hub
        assert await until(lambda: message_id not in hub.generations, timeout=10)  # the grace period ended
        rest = await follow(api, chat_id, last_event_id=full[3].id)
        # The events after seq 4 are gone: the stored text replaces what the client has
        # (never a silent gap), then the stored status.
        assert [e.event for e in rest] == ["resync", "done"]
        assert rest[0].data == {
            "type": "resync", "message_id": message_id, "content": deltas(full), "reasoning": None
        }  # fmt: skip
        assert rest[1].data["message_id"] == message_id and rest[1].data["status"] == "complete"
        assert full[3].seq < rest[0].seq < rest[1].seq
        # Without Last-Event-ID and nothing live: the latest answer's final state.
        latest = await follow(api, chat_id)
        assert [e.event for e in latest] == ["resync", "done"] and latest[1].data["message_id"] == message_id
        assert latest[0].data["content"] == deltas(full)


async def test_two_subscribers_receive_identical_sequences(user: Api, upstream: FakeUpstream) -> None:
    upstream.script = Script(tokens=TOKENS, delay=0.01, first_token_delay=0.2)
    created = await user.post("/api/chats", {})
    chat_id = created.json["id"]
    accepted = await user.post(f"/api/chats/{chat_id}/messages", {"message": "go"})
    assert accepted.status == 202
    one, two = await asyncio.gather(follow(user, chat_id), follow(user, chat_id))
    assert [(e.id, e.event, e.data) for e in one] == [(e.id, e.event, e.data) for e in two]
    assert one[0].event == "start" and one[-1].event == "done"
    assert deltas(one) == "".join(TOKENS)
