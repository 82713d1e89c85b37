"""The store (FerretDB) down for 10 s under two Gust processes: killed, or hung (SIGSTOP).

During the outage new sends answer 503 with Retry-After and a JSON error (never 500, never
hang); answers that finish during it are kept and stored once the store is back (a client
told `complete` finds exactly that text stored); resumes answer. Afterwards both processes
are ready again, answer normally and still exit on SIGTERM (no wedged process); a process
started during the outage listens at once and becomes ready when the store returns.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import aiohttp
import pytest

from tests.support.fake_upstream import Script
from tests.support.wait import until
from tests.topology.conftest import Topology, answer_tokens, expected_text
from tests.topology.harness import Client, Record, Tally

pytestmark = [pytest.mark.topology, pytest.mark.timeout(240)]

OUTAGE = 10.0
FINISHING = 2  # answers that run into the outage and end during it
READ_TIMEOUT = 40.0
REQUEST_TIMEOUT = 20.0  # a request during the outage must answer (503) well before this


def deltas(record: Record) -> int:
    return sum(1 for e in record.events if e.event == "delta")


@pytest.mark.parametrize("fault", ["killed", "hung"])
async def test_store_outage_answers_503_keeps_finished_answers_and_recovers(
    topology: Topology, http: aiohttp.ClientSession, fault: str
) -> None:
    script = Script(tokens=answer_tokens("m", 150), delay=0.03)  # ~4.5 s: ends inside the outage
    topology.upstream.scripts["long"] = script
    topology.upstream.scripts["steady"] = short = Script(tokens=answer_tokens("n", 20), delay=0.01)
    expected = expected_text(script)
    a, b = await asyncio.gather(topology.gust("a"), topology.gust("b"))
    procs = {"A": a, "B": b}
    tally = Tally(f"store_outage_{fault}")
    client = await Client.sign_up(http, a.url, f"store-{fault}@example.com")
    chats = [await client.new_chat(a.url) for _ in range(FINISHING)]
    spare_chats = [await client.new_chat(a.url) for _ in range(4)]

    origins = [Record(f"origin{i}@A", a.url) for i in range(FINISHING)]
    tasks = [asyncio.create_task(client.stream(o, {"chat_id": c, "message": f"store q{i}", "model": "long"},
                                               READ_TIMEOUT))
             for i, (o, c) in enumerate(zip(origins, chats, strict=True))]
    assert await until(lambda: all(o.start or o.status not in (0, 200) for o in origins), timeout=30)
    followers = [Record(f"follow{i}@B", b.url) for i in range(FINISHING)]
    tasks += [asyncio.create_task(client.follow(f, c, READ_TIMEOUT))
              for f, c in zip(followers, chats, strict=True)]
    droppers = [Record(f"drop{i}@B", b.url) for i in range(FINISHING)]
    for dropper, chat in zip(droppers, chats, strict=True):
        await client.follow(dropper, chat, READ_TIMEOUT, stop_after=6)
    assert await until(lambda: all(deltas(o) >= 20 or o.done for o in origins), timeout=30)

    await asyncio.to_thread(topology.ferret.kill if fault == "killed" else topology.ferret.pause)
    loop = asyncio.get_running_loop()
    outage_ends = loop.time() + OUTAGE

    # A third process starts during the outage: it listens at once and is ready once the store is.
    starting = asyncio.create_task(topology.gust("c"))
    # During the outage: sends on both processes, resumes on B.
    sends: list[tuple[Record, str, str]] = []
    during = [Record(f"resume-during{i}@B", b.url) for i in range(FINISHING)]
    jobs = [client.follow(r, c, READ_TIMEOUT, last_event_id=d.last_id)
            for r, c, d in zip(during, chats, droppers, strict=True)]
    for n, (name, chat) in enumerate(zip("ABAB", spare_chats, strict=True)):
        record = Record(f"send{n}@{name}-during", procs[name].url)
        sends.append((record, chat, f"sent during {n}"))
        jobs.append(client.stream(record, {"chat_id": chat, "message": f"sent during {n}", "model": "steady"},
                                  REQUEST_TIMEOUT))
    await asyncio.gather(*jobs)
    await asyncio.sleep(max(0.0, outage_ends - loop.time()))  # the rest of the outage (the fault's length)
    if fault == "killed":
        await topology.ferret.start()
    else:
        topology.ferret.resume()

    try:
        procs["C"] = await starting
    except AssertionError as exc:
        tally.problem(f"process C, started during the outage, did not answer /health: {exc}"[:2000])
    for name, proc in procs.items():
        if not await topology.ready(proc, timeout=45):
            tally.problem(f"process {name}: /health/ready not 200 within 45 s after the store returned")
    await asyncio.gather(*tasks)
    after = [Record(f"resume-after{i}@B", b.url) for i in range(FINISHING)]
    await asyncio.gather(*(client.follow(r, c, READ_TIMEOUT, last_event_id=d.last_id)
                           for r, c, d in zip(after, chats, droppers, strict=True)))

    # The answers that ended during the outage: every client told `complete` finds that text stored.
    for i, chat in enumerate(chats):
        origin = origins[i]
        for record in (origin, followers[i], after[i]):
            tally.connection(record)
        tally.connection(during[i], must_end=during[i].status == 200)
        if during[i].status == 503:
            tally.response(during[i].label, 503, during[i].error_body, {"Retry-After": during[i].retry_after})
        if origin.start is None:
            tally.problem(f"{origin.label}: no start ({origin.status} {origin.error_body})")
            continue
        tally.started += 1
        stored = await client.settled(b.url, chat, origin.start.data["message_id"], timeout=30)
        tally.count_final(stored["status"] if stored else None)
        views = [(origin.label, origin.text(), origin.final_status),
                 (followers[i].label, followers[i].text(), followers[i].final_status),
                 (after[i].label, after[i].text(before=droppers[i].text()), after[i].final_status)]
        if during[i].done is not None:
            views.append((during[i].label, during[i].text(before=droppers[i].text()), during[i].final_status))
        for label, text, final in views:
            tally.compare(label, text, final, stored, expected, survived=True)
        tally.resumed += sum(1 for r in (during[i], after[i]) if r.done is not None)

    # Sends during the outage: refused with 503 + Retry-After, or accepted and then answered in full.
    for record, chat, text in sends:
        await check_send(tally, client, record, chat, text, short)

    # No wedge: both processes answer new messages, and exit on SIGTERM.
    for name, proc in procs.items():
        text = f"after the outage {name}"
        record = await client.stream(Record(f"fresh@{name}", proc.url), {"message": text, "model": "steady"},
                                     READ_TIMEOUT)
        await check_send(tally, client, record, None, text, short, must_accept=True)
    for name, proc in procs.items():
        proc.signal(signal.SIGTERM)
        try:
            await proc.wait_exit(15)
        except AssertionError:
            tally.problem(f"process {name}: did not exit within 15 s of SIGTERM (wedged)")
    tally.add("tracebacks", topology.tracebacks())
    tally.report()


async def check_send(tally: Tally, client: Client, record: Record, chat: str | None, text: str,
                     script: Script, must_accept: bool = False) -> None:
    """A send is refused cleanly (503 + Retry-After + JSON) or accepted, answered and stored."""
    tally.connection(record)
    if record.status == 503:
        tally.add("sends_503")
        tally.response(record.label, 503, record.error_body, {"Retry-After": record.retry_after})
        code = error_code(record.error_body)
        if code != "store_unavailable":
            tally.problem(f"{record.label}: 503 with error code {code!r}, expected store_unavailable")
        if must_accept:
            tally.problem(f"{record.label}: refused after the outage")
        return
    if record.status != 200 or record.start is None:
        tally.add("sends_failed")
        if record.status < 500:  # a 500 is already counted
            tally.problem(f"{record.label}: HTTP {record.status} {record.error_body or record.failure}")
        return
    tally.started += 1
    tally.add("sends_accepted")
    chat_id = chat or record.start.data["chat_id"]
    stored = await client.settled(record.url, chat_id, record.start.data["message_id"], timeout=30)
    tally.count_final(stored["status"] if stored else None)
    if record.final_status != "complete":
        tally.problem(f"{record.label}: accepted, ended {record.final_status}")
    tally.compare(record.label, record.text(), record.final_status, stored, expected_text(script),
                  survived=True)
    messages = await client.messages(record.url, chat_id) or []
    if not any(m["role"] == "user" and m["content"] == text for m in messages):
        tally.add("user_messages_lost")
        tally.problem(f"{record.label}: the accepted user message is not stored")


def error_code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code is not None else None
    return None
