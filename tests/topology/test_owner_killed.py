"""kill -9 of the process answering, with followers and resumes on the other process.

No restart of the dead process is needed: a live process notices the owner stopped (within
GENERATION_OWNER_TIMEOUT), marks each answer `interrupted` with its last stored text and tells
every follower `error owner_lost` + `done interrupted`. Resumes answer 200, never 500, before
and after the reaping, and from a restarted process too.
"""

from __future__ import annotations

import asyncio
import signal
import time

import aiohttp
import pytest

from tests.support.fake_upstream import Script
from tests.support.wait import until
from tests.topology.conftest import OWNER_TIMEOUT, Topology, answer_tokens, expected_text
from tests.topology.harness import Client, Record, Tally

pytestmark = [pytest.mark.topology, pytest.mark.timeout(180)]

STREAMS = 3
READ_TIMEOUT = OWNER_TIMEOUT * 3 + 10  # bounded: a follower never told anything fails, not hangs
AFTER_TIMEOUT = OWNER_TIMEOUT * 2 + 5  # once every follower ended, the rest comes at once


def deltas(record: Record) -> int:
    return sum(1 for e in record.events if e.event == "delta")


async def test_kill_9_of_the_answering_process_ends_every_follower_and_resume(
    topology: Topology, http: aiohttp.ClientSession
) -> None:
    script = Script(tokens=answer_tokens("k", 600), delay=0.03)  # ~18 s: still running at the kill
    topology.upstream.scripts["long"] = script
    expected = expected_text(script)
    a, b = await asyncio.gather(topology.gust("a"), topology.gust("b"))
    tally = Tally("owner_killed")
    client = await Client.sign_up(http, b.url, "killed@example.com")

    chats, message_ids = [], []
    for i in range(STREAMS):
        chat = await client.new_chat(a.url)
        status, body, headers = await client.call("POST", a.url + f"/api/chats/{chat}/messages",
                                                  {"message": f"kill q{i}", "model": "long"})
        tally.response(f"send{i}@A", status, body, headers)
        assert status == 202, body
        chats.append(chat)
        message_ids.append(body["message_id"])
    tally.started = len(chats)

    followers = [Record(f"follow{i}@B", b.url) for i in range(STREAMS)]
    droppers = [Record(f"drop{i}@B", b.url) for i in range(STREAMS)]
    tasks = [asyncio.create_task(client.follow(f, c, READ_TIMEOUT))
             for f, c in zip(followers, chats, strict=True)]
    for dropper, chat in zip(droppers, chats, strict=True):
        await client.follow(dropper, chat, READ_TIMEOUT, stop_after=6)  # start + 5 deltas, then hang up
    assert await until(lambda: all(deltas(f) >= 20 or f.done for f in followers), timeout=30), \
        [deltas(f) for f in followers]

    a.signal(signal.SIGKILL)
    await a.wait_exit(10)
    killed_at = time.monotonic()

    # Resumes at once (the owner's death not yet noticed) and after every follower ended.
    early = [Record(f"resume-early{i}@B", b.url) for i in range(STREAMS)]
    tasks += [asyncio.create_task(client.follow(r, c, READ_TIMEOUT, last_event_id=d.last_id))
              for r, c, d in zip(early, chats, droppers, strict=True)]
    ended_after: list[float] = []

    async def watch(record: Record) -> None:
        await until(lambda: record.done is not None or record.failure is not None, timeout=READ_TIMEOUT)
        ended_after.append(time.monotonic() - killed_at)

    await asyncio.gather(*tasks, *(watch(f) for f in followers))
    late = [Record(f"resume-late{i}@B", b.url) for i in range(STREAMS)]
    await asyncio.gather(*(client.follow(r, c, AFTER_TIMEOUT, last_event_id=d.last_id)
                           for r, c, d in zip(late, chats, droppers, strict=True)))

    # The dead process restarted: resumes there answer too (the log outlives the owner).
    a2 = await topology.gust("a2")
    again = [Record(f"resume-restarted{i}@A2", a2.url) for i in range(STREAMS)]
    await asyncio.gather(*(client.follow(r, c, AFTER_TIMEOUT, last_event_id=d.last_id)
                           for r, c, d in zip(again, chats, droppers, strict=True)))
    stored_answers = await asyncio.gather(*(client.settled(b.url, c, m, timeout=AFTER_TIMEOUT)
                                            for c, m in zip(chats, message_ids, strict=True)))

    for i, chat in enumerate(chats):
        for record in (followers[i], early[i], late[i], again[i]):
            tally.connection(record)
            if record.status == 200 and record is not followers[i] and record.done is not None:
                tally.resumed += 1
        stored = stored_answers[i]
        tally.count_final(stored["status"] if stored else None)
        if stored is not None and stored["status"] != "interrupted":
            tally.problem(f"answer {i}: stored as {stored['status']}, expected interrupted")
        follower = followers[i]
        if follower.done is not None:
            if follower.final_status != "interrupted":
                tally.problem(f"{follower.label}: done {follower.final_status}, expected interrupted")
            if not any(e.get("code") == "owner_lost" and e.get("retryable") is True for e in follower.errors):
                tally.problem(f"{follower.label}: no retryable owner_lost before done: {follower.errors}")
        tally.compare(follower.label, follower.text(), follower.final_status, stored, expected,
                      survived=False)
        for record in (early[i], late[i], again[i]):
            if record.done is not None and record.final_status != "interrupted":
                tally.problem(f"{record.label}: done {record.final_status}, expected interrupted")
            tally.compare(record.label, record.text(before=droppers[i].text()), record.final_status, stored,
                          expected, survived=False)
        messages = await client.messages(b.url, chat) or []
        if not any(m["role"] == "user" and m["content"] == f"kill q{i}" for m in messages):
            tally.add("user_messages_lost")
            tally.problem(f"chat {i}: the accepted user message is not stored")

    # The surviving process answers as before: a new answer there loses nothing.
    topology.upstream.scripts["steady"] = short = Script(tokens=answer_tokens("b", 30), delay=0.01)
    fresh = await client.stream(Record("fresh@B", b.url), {"message": "after the kill", "model": "steady"},
                                READ_TIMEOUT)
    tally.connection(fresh)
    if fresh.start is not None:
        tally.started += 1
        stored = await client.settled(b.url, fresh.start.data["chat_id"], fresh.start.data["message_id"])
        tally.count_final(stored["status"] if stored else None)
        if fresh.final_status != "complete":
            tally.problem(f"{fresh.label}: ended {fresh.final_status}, expected complete")
        tally.compare(fresh.label, fresh.text(), fresh.final_status, stored, expected_text(short),
                      survived=True)
    tally.add("followers_ended_s_max", int(max(ended_after, default=0) + 0.999))
    tally.add("tracebacks", topology.tracebacks())
    tally.report()
