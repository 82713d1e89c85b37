"""gunicorn `-w 2` with the project's config: an answer followed, resumed and stopped through the
other worker (every request is a new connection, so it may land on either worker).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable

import aiohttp
import pytest

from tests.support.fake_upstream import Script
from tests.support.wait import until
from tests.topology.conftest import Topology, answer_tokens, expected_text
from tests.topology.harness import Client, Record, Tally
from tests.topology.workers import children, get_health, owner_of_connection, post_on_worker

pytestmark = [pytest.mark.topology, pytest.mark.timeout(180)]

READ_TIMEOUT = 60.0
MAX_FOLLOWERS = 16  # opened until two of them landed on the other worker
PING = "6"  # SSE_PING_INTERVAL above redis-py's 5 s socket timeout, below the upstream's silence


def landed(record: Record) -> bool:
    """Whether a follow connection is open (its local port known) or has failed."""
    return record.local_port is not None or record.failure is not None


def deltas(record: Record) -> int:
    return sum(1 for e in record.events if e.event == "delta")


async def test_gunicorn_two_workers_follow_resume_and_stop_across_workers(
    topology: Topology, http: aiohttp.ClientSession
) -> None:
    script = Script(tokens=answer_tokens("g", 60), delay=0.03, first_token_delay=8.0)
    topology.upstream.scripts["slow-start"] = script
    topology.upstream.scripts["long"] = Script(tokens=answer_tokens("h", 1000), delay=0.03)
    expected = expected_text(script)
    server = await topology.gunicorn(workers=2, SSE_PING_INTERVAL=PING)
    assert await until(lambda: len(children(server.proc.pid)) == 2, timeout=60), server.log()
    workers = children(server.proc.pid)
    serving: set[int] = set()

    async def both_serving() -> bool:  # a worker still building its services accepts nothing yet
        serving.add(await get_health(server.port, workers) or 0)
        return set(workers) <= serving

    assert await until(both_serving, timeout=60, interval=0.05), (serving, workers, server.log())
    tally = Tally("gunicorn")
    client = await Client.sign_up(http, server.url, "gunicorn@example.com")

    def worker_of(record: Record) -> int | None:
        return owner_of_connection(server.port, record.local_port, workers) if record.local_port else None

    # An answer with an 8 s silence before its first token, followed through new connections.
    chat = await client.new_chat(server.url)
    origin = Record("origin", server.url)
    question = {"chat_id": chat, "message": "gunicorn q", "model": "slow-start"}
    tasks: list[Awaitable[object]] = [asyncio.create_task(client.stream(origin, question, READ_TIMEOUT))]
    assert await until(lambda: origin.start is not None or origin.status not in (0, 200), timeout=30)
    assert origin.start is not None, (origin.status, origin.error_body)
    tally.started += 1
    owner = worker_of(origin)
    assert owner in workers, (owner, workers)
    other = next(w for w in workers if w != owner)

    followers: list[Record] = []
    across: list[Record] = []
    while len(across) < 2 and len(followers) < MAX_FOLLOWERS:
        follower = Record(f"follow{len(followers)}", server.url)
        followers.append(follower)
        tasks.append(asyncio.create_task(client.follow(follower, chat, READ_TIMEOUT)))
        await until(functools.partial(landed, follower), timeout=30)
        if worker_of(follower) == other:
            follower.label += "@other-worker"
            across.append(follower)
    if len(across) < 2:
        tally.problem(f"only {len(across)} of {len(followers)} follow connections landed on the other worker")
    # A follower on the other worker drops after a few events and resumes on a new connection.
    dropper = Record("drop", server.url)
    resume = Record("resume", server.url)

    async def drop_then_resume() -> None:
        await client.follow(dropper, chat, READ_TIMEOUT, stop_after=4)
        await client.follow(resume, chat, READ_TIMEOUT, last_event_id=dropper.last_id)

    tasks.append(asyncio.create_task(drop_then_resume()))
    await asyncio.gather(*tasks)

    stored = await client.settled(server.url, chat, origin.start.data["message_id"])
    tally.count_final(stored["status"] if stored else None)
    views = [(origin.label, origin.text(), origin.final_status, origin)]
    views += [(f.label, f.text(), f.final_status, f) for f in followers]
    views.append((resume.label, resume.text(before=dropper.text()), resume.final_status, resume))
    for label, text, final, record in views:
        tally.connection(record)
        if final is not None and final != "complete":
            tally.problem(f"{label}: done {final}, expected complete")
        tally.compare(label, text, final, stored, expected, survived=True)
    if resume.done is not None:
        tally.resumed += 1
    tally.add("followers", len(followers))
    tally.add("followers_other_worker", len(across))

    # Stop through the other worker: the answer ends `stopped` there and in the store.
    chat2 = await client.new_chat(server.url)
    long_run = Record("stopped-origin", server.url)
    body2 = {"chat_id": chat2, "message": "stop me", "model": "long"}
    task = asyncio.create_task(client.stream(long_run, body2, READ_TIMEOUT))
    if await until(lambda: deltas(long_run) >= 5 or long_run.done is not None, timeout=30):
        tally.started += 1
        owner2 = worker_of(long_run)
        target = next((w for w in workers if w != owner2), workers[0])
        status, body = await post_on_worker(server.port, target, workers, f"/api/chats/{chat2}/stop",
                                            client.headers)
        tally.response("stop@other-worker", status, body, {})
        if status != 200 or not body or body.get("stopped") is not True:
            tally.problem(f"stop@other-worker: {status} {body}")
    await task
    tally.connection(long_run)
    if long_run.start is not None:
        stored2 = await client.settled(server.url, chat2, long_run.start.data["message_id"])
        tally.count_final(stored2["status"] if stored2 else None)
        if long_run.final_status != "stopped" or not stored2 or stored2["status"] != "stopped":
            tally.problem(f"stopped-origin: done {long_run.final_status}, stored "
                          f"{stored2['status'] if stored2 else None}; expected stopped")
        elif stored2["content"] != long_run.text():
            tally.problem("stopped-origin: the stored text differs from the client's")
    for record_chat, text in ((chat, "gunicorn q"), (chat2, "stop me")):
        messages = await client.messages(server.url, record_chat) or []
        if not any(m["role"] == "user" and m["content"] == text for m in messages):
            tally.add("user_messages_lost")
            tally.problem(f"the accepted user message {text!r} is not stored")
    tally.add("tracebacks", server.log().count("Traceback"))
    tally.report()
