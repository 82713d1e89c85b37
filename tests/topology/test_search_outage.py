"""Meilisearch killed and restarted under two Gust processes.

While it is down, search answers 503 (a JSON error, never 500) and everything else works:
messages are sent and answered, a chat is renamed. Once it is back, search recovers and
finds everything written during the outage (nothing stays un-indexed).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from tests.support.fake_upstream import Script
from tests.support.wait import until
from tests.topology.conftest import Topology, answer_tokens, expected_text
from tests.topology.harness import Client, Record, Tally

pytestmark = [pytest.mark.topology, pytest.mark.timeout(180)]

ANSWER_WORD = "zephyrine"  # in every answer, so each answer's message is findable
READ_TIMEOUT = 30.0
RECOVERY = 60.0  # bounded wait for the index to catch up (polling, not a timing assertion)


async def search(client: Client, url: str, words: str) -> tuple[int, Any, Any]:
    return await client.call("GET", url + f"/api/search?q={quote(words)}&limit=50", timeout=20)


async def test_search_outage_answers_503_then_finds_everything_written_during_it(
    topology: Topology, http: aiohttp.ClientSession
) -> None:
    script = Script(tokens=[*answer_tokens("t", 10), f" {ANSWER_WORD}"], delay=0.01)
    topology.upstream.scripts["steady"] = script
    a, b = await asyncio.gather(topology.gust("a"), topology.gust("b"))
    procs = {"A": a, "B": b}
    tally = Tally("search_outage")
    client = await Client.sign_up(http, a.url, "search@example.com")

    async def send(name: str, text: str) -> Record:
        record = await client.stream(Record(f"send@{name} {text!r}", procs[name].url),
                                     {"message": text, "model": "steady"}, READ_TIMEOUT)
        tally.connection(record)
        if record.start is None:
            tally.problem(f"{record.label}: not accepted ({record.status} {record.error_body})")
            return record
        tally.started += 1
        chat_id, message_id = record.start.data["chat_id"], record.start.data["message_id"]
        stored = await client.settled(record.url, chat_id, message_id)
        tally.count_final(stored["status"] if stored else None)
        tally.compare(record.label, record.text(), record.final_status, stored, expected_text(script),
                      survived=True)
        return record

    async def found(url: str, words: str, chat_ids: set[str], role: str | None = None) -> bool:
        status, body, _ = await search(client, url, words)
        if status != 200:
            return False
        hits = {h["chat_id"] for h in body["hits"] if role is None or h["role"] == role}
        return chat_ids <= hits

    before = await send("A", "question quokkabefore")
    assert before.start is not None
    first_chat = before.start.data["chat_id"]
    if not await until(lambda: found(b.url, "quokkabefore", {first_chat}), timeout=RECOVERY):
        tally.problem("a message written before the outage was never found")

    await asyncio.to_thread(topology.meili.kill)
    for name, proc in procs.items():
        status, body, headers = await search(client, proc.url, "quokkabefore")
        tally.response(f"search@{name}-during", status, body, headers, retry_after=False)
        if status == 503:
            tally.add("searches_503")
        else:
            tally.problem(f"search@{name} during the outage: HTTP {status}, expected 503")

    # Writes during the outage: new chats on both processes, a message in an old chat, a rename.
    written = [await send(name, f"question outage{n}word") for n, name in enumerate("ABA")]
    chat_ids = {r.start.data["chat_id"] for r in written if r.start is not None}
    status, body, headers = await client.call("PATCH", b.url + f"/api/chats/{first_chat}",
                                              {"title": "renamed wombatitle"})
    tally.response("rename@B-during", status, body, headers)
    if status != 200:
        tally.problem(f"rename@B during the outage: HTTP {status} {body}")
    status, body, headers = await search(client, a.url, "outage0word")
    tally.response("search@A-during-writes", status, body, headers, retry_after=False)

    await topology.meili.start()
    for name, proc in procs.items():
        if not await topology.ready(proc, timeout=RECOVERY):
            tally.problem(f"process {name}: /health/ready not 200 within {RECOVERY} s after the restart")
    checks: list[tuple[str, set[str], str | None]]
    checks = [(f"outage{n}word", {r.start.data["chat_id"]}, "user") for n, r in enumerate(written) if r.start]
    checks += [(ANSWER_WORD, chat_ids, "assistant"), ("wombatitle", {first_chat}, None)]
    for words, ids, role in checks:
        if await until(functools.partial(found, b.url, words, ids, role), timeout=RECOVERY, interval=0.25):
            tally.add("found_after")
        else:
            tally.add("unindexed")
            tally.problem(f"{words!r} ({role or 'chat title'}) written during the outage: not found after it")
    for name, proc in procs.items():
        status, body, headers = await search(client, proc.url, "quokkabefore")
        tally.response(f"search@{name}-after", status, body, headers)
        if status != 200:
            tally.problem(f"search@{name} after the outage: HTTP {status} {body}")
    tally.add("tracebacks", topology.tracebacks())
    tally.report()
