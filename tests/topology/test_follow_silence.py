"""Following an answer from the other process across silences longer than every client timeout.

The upstream waits 8 s before its first token (longer than redis-py's 5 s default socket
timeout and than SSE_PING_INTERVAL, here 6 s: the bus blocks that long reading Redis),
then pauses 7 s mid-answer. Followers on process B,
and resumes there with Last-Event-ID during the pause, must get every character and `done`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import aiohttp
import pytest

from tests.support.fake_upstream import Script
from tests.support.wait import until
from tests.topology.conftest import Topology, answer_tokens, expected_text
from tests.topology.harness import Client, Record, Tally

pytestmark = pytest.mark.topology

STREAMS = 3
PING = "6"  # SSE_PING_INTERVAL: the bus's blocking read outlasts redis-py's 5 s socket timeout
READ_TIMEOUT = 60.0  # a stream that has not ended by then never will


async def test_followers_on_the_other_process_survive_long_silences(
    topology: Topology, http: aiohttp.ClientSession
) -> None:
    script = Script(tokens=answer_tokens("s", 40), delay=0.02, first_token_delay=8.0,
                    pause_after=20, pause=7.0)
    topology.upstream.scripts["slow-start"] = script
    expected = expected_text(script)
    a, b = await asyncio.gather(topology.gust("a", SSE_PING_INTERVAL=PING),
                                topology.gust("b", SSE_PING_INTERVAL=PING))
    tally = Tally("follow_silence")
    client = await Client.sign_up(http, a.url, "silence@example.com")
    chats = [await client.new_chat(a.url) for _ in range(STREAMS)]

    origins = [Record(f"origin{i}@A", a.url) for i in range(STREAMS)]
    running: list[Awaitable[object]] = [
        asyncio.create_task(client.stream(
            origin, {"chat_id": chat, "message": f"q{i}", "model": "slow-start"}, READ_TIMEOUT))
        for i, (origin, chat) in enumerate(zip(origins, chats, strict=True))
    ]
    assert await until(lambda: all(o.start or o.status not in (0, 200) for o in origins), timeout=30)
    tally.started = sum(1 for o in origins if o.start)

    # While the upstream is silent: a follower on B for each answer, and one that will resume.
    followers = [Record(f"follow{i}@B", b.url) for i in range(STREAMS)]
    droppers = [Record(f"drop{i}@B", b.url) for i in range(STREAMS)]
    resumes = [Record(f"resume{i}@B", b.url) for i in range(STREAMS)]

    async def drop_then_resume(i: int) -> None:
        # start + 15 deltas: inside the mid-answer pause; hang up, then resume on B at once.
        await client.follow(droppers[i], chats[i], READ_TIMEOUT, stop_after=16)
        if droppers[i].last_id is not None:
            await client.follow(resumes[i], chats[i], READ_TIMEOUT, last_event_id=droppers[i].last_id)

    running += [asyncio.create_task(client.follow(f, chat, READ_TIMEOUT)) for f, chat in zip(followers, chats,
                                                                                           strict=True)]
    running += [asyncio.create_task(drop_then_resume(i)) for i in range(STREAMS)]
    await asyncio.gather(*running)

    for i, chat in enumerate(chats):
        origin = origins[i]
        for record in (origin, followers[i], resumes[i]):
            tally.connection(record)
        tally.connection(droppers[i], must_end=False)
        if origin.start is None:
            tally.problem(f"{origin.label}: no start ({origin.status} {origin.error_body})")
            continue
        stored = await client.settled(a.url, chat, origin.start.data["message_id"])
        tally.count_final(stored["status"] if stored else None)
        if resumes[i].done is not None:
            tally.resumed += 1
        for label, text, status in (
            (origin.label, origin.text(), origin.final_status),
            (followers[i].label, followers[i].text(), followers[i].final_status),
            (resumes[i].label, resumes[i].text(before=droppers[i].text()), resumes[i].final_status),
        ):
            if status is not None and status != "complete":
                tally.problem(f"{label}: ended {status!r}, expected complete")
            tally.compare(label, text, status, stored, expected, survived=True)
        messages = await client.messages(b.url, chat) or []
        if not any(m["role"] == "user" and m["content"] == f"q{i}" for m in messages):
            tally.problem(f"chat {i}: the accepted user message is not stored")
            tally.add("user_messages_lost")
    tally.add("tracebacks", topology.tracebacks())
    tally.report()
