"""Redis restarted mid-stream (SHUTDOWN NOSAVE: it comes back empty) under two Gust processes.

Answers run on A with their clients there, followers on B. Across the restart no follower
may get a silent gap or miss `done`; resumes on B from before the restart answer with the
authoritative text; POST /stop from B stops both an answer running across the restart and
one started after it.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.support.fake_upstream import Script
from tests.support.wait import until
from tests.topology.conftest import Topology, answer_tokens, expected_text
from tests.topology.harness import Client, Record, Tally

pytestmark = [pytest.mark.topology, pytest.mark.timeout(180)]

STREAMS = 3
READ_TIMEOUT = 45.0
OUTAGE = 2.0  # seconds Redis stays down


def deltas(record: Record) -> int:
    return sum(1 for e in record.events if e.event == "delta")


async def stop_from(client: Client, url: str, chat_id: str, label: str, tally: Tally) -> None:
    """POST /stop as a client does: retry after a 503 as told (a few times), then it must stop."""
    for _ in range(10):
        status, body, headers = await client.call("POST", url + f"/api/chats/{chat_id}/stop")
        tally.response(label, status, body, headers)
        if status != 503:
            break
        await asyncio.sleep(min(float(headers.get("Retry-After") or 1), 2))  # the client's back-off
    if status != 200 or body.get("stopped") is not True:
        tally.problem(f"{label}: {status} {body}")


async def test_redis_restart_mid_stream_loses_nothing_and_stop_still_works(
    topology: Topology, http: aiohttp.ClientSession
) -> None:
    script = Script(tokens=answer_tokens("r", 500), delay=0.03)  # ~15 s: running across the restart
    topology.upstream.scripts["long"] = script
    expected = expected_text(script)
    a, b = await asyncio.gather(topology.gust("a"), topology.gust("b"))
    tally = Tally("redis_restart")
    client = await Client.sign_up(http, a.url, "redis@example.com")
    chats = [await client.new_chat(a.url) for _ in range(STREAMS + 1)]  # the last one is stopped

    origins = [Record(f"origin{i}@A", a.url) for i in range(STREAMS + 1)]
    tasks = [asyncio.create_task(client.stream(o, {"chat_id": c, "message": f"redis q{i}", "model": "long"},
                                               READ_TIMEOUT))
             for i, (o, c) in enumerate(zip(origins, chats, strict=True))]
    assert await until(lambda: all(o.start or o.status not in (0, 200) for o in origins), timeout=30)
    followers = [Record(f"follow{i}@B", b.url) for i in range(STREAMS + 1)]
    tasks += [asyncio.create_task(client.follow(f, c, READ_TIMEOUT))
              for f, c in zip(followers, chats, strict=True)]
    droppers = [Record(f"drop{i}@B", b.url) for i in range(STREAMS)]
    for dropper, chat in zip(droppers, chats[:STREAMS], strict=True):
        await client.follow(dropper, chat, READ_TIMEOUT, stop_after=6)  # start + 5 deltas, then hang up
    assert await until(lambda: all(deltas(f) >= 20 or f.done for f in followers), timeout=30)

    await asyncio.to_thread(topology.redis.stop)
    await asyncio.sleep(OUTAGE)  # the outage itself (a fault's length, not a wait for a condition)
    await topology.redis.start()
    seen = [deltas(f) for f in followers]
    # At once, from B: stop the answer running across the restart (a 503 "retry shortly" is
    # honest while the bus reconnects; `stopped: false` for a running answer is not).
    await stop_from(client, b.url, chats[STREAMS], "stop-across@B", tally)

    # Both processes work with the new Redis: ready, and the followers moving again.
    for proc in (a, b):
        if not await topology.ready(proc, timeout=30):
            tally.problem(f"process on {proc.port}: /health/ready not 200 within 30 s after the restart")
    moving = await until(
        lambda: all(deltas(f) >= n + 5 or f.done for f, n in zip(followers, seen, strict=True)), timeout=20)
    if not moving:
        tally.problem(f"followers on B stalled after the restart: {seen} -> {[deltas(f) for f in followers]}")

    # Resumes on B from before the restart (that part of the log is gone from Redis).
    resumes = [Record(f"resume{i}@B", b.url) for i in range(STREAMS)]
    tasks += [asyncio.create_task(client.follow(r, c, READ_TIMEOUT, last_event_id=d.last_id))
              for r, c, d in zip(resumes, chats[:STREAMS], droppers, strict=True)]

    # Stop, from B, one started after the restart.
    new_chat = await client.new_chat(a.url)
    started_after = Record("origin-after@A", a.url)
    tasks.append(asyncio.create_task(client.stream(started_after, {"chat_id": new_chat, "message": "after",
                                                                   "model": "long"}, READ_TIMEOUT)))
    if not await until(lambda: deltas(started_after) >= 5 or started_after.done is not None, timeout=30):
        tally.problem(f"origin-after@A: no text after the restart ({started_after.status})")
    await stop_from(client, b.url, new_chat, "stop-after@B", tally)
    await asyncio.gather(*tasks)

    all_chats = [*chats, new_chat]
    all_origins = [*origins, started_after]
    tally.started = sum(1 for o in all_origins if o.start)
    for i, (chat, origin) in enumerate(zip(all_chats, all_origins, strict=True)):
        tally.connection(origin)
        if origin.start is None:
            tally.problem(f"{origin.label}: no start ({origin.status} {origin.error_body})")
            continue
        stored = await client.settled(b.url, chat, origin.start.data["message_id"], timeout=20)
        tally.count_final(stored["status"] if stored else None)
        want = "complete" if i < STREAMS else "stopped"
        views = [(origin.label, origin.text(), origin.final_status)]
        if i < len(followers):
            tally.connection(followers[i])
            views.append((followers[i].label, followers[i].text(), followers[i].final_status))
        if i < STREAMS:
            tally.connection(resumes[i])
            if resumes[i].done is not None:
                tally.resumed += 1
            resumed_text = resumes[i].text(before=droppers[i].text())
            views.append((resumes[i].label, resumed_text, resumes[i].final_status))
        for label, text, final in views:
            if final is not None and final != want:
                tally.problem(f"{label}: done {final}, expected {want}")
            tally.compare(label, text, final, stored, expected, survived=True)
        if stored is not None and stored["status"] != want:
            tally.problem(f"answer {i}: stored as {stored['status']}, expected {want}")
        if want == "stopped" and stored is not None:
            if stored["content"] == expected:
                tally.problem(f"answer {i}: ran to its end although stopped")
            if origin.done is not None and origin.text() != stored["content"]:
                tally.problem(f"{origin.label}: stopped, but its text differs from the stored text")
        messages = await client.messages(b.url, chat) or []
        if not any(m["role"] == "user" for m in messages):
            tally.add("user_messages_lost")
            tally.problem(f"chat {i}: the accepted user message is not stored")
    tally.add("resyncs", sum(r.resyncs for r in (*followers, *resumes)))
    tally.add("tracebacks", topology.tracebacks())
    tally.report()
