"""Capacity benchmark: a synthetic corpus at the brief's scale, loaded through the store and
the indexer, then read and searched the way users do.

    PYTHONPATH=backend .venv/bin/python bench/capacity.py --scale 0.25

Scale 1 is the brief's: 2,000 users x 200 chats, about 10 messages each (10 chats of 50
messages, 190 of 8: 2,020 per user, 4.04 M in all). Runs on the embedded defaults (SQLite
store, SQLite FTS5 search) in a fresh DATA_DIR. Memory stays bounded: the corpus is
generated and written one user at a time. Prints a Markdown report (and --json).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "backend"))

from gust.adapters.search.sqlite_fts import SQLiteSearchIndex  # noqa: E402
from gust.adapters.store.sqlite import SQLiteStore  # noqa: E402
from gust.config import Settings  # noqa: E402
from gust.domain.errors import NotFound  # noqa: E402
from gust.domain.ids import new_id  # noqa: E402
from gust.domain.models import Chat, Message, Role, User  # noqa: E402
from gust.services.chats import ChatService  # noqa: E402
from gust.services.indexer import Indexer  # noqa: E402
from gust.services.search import SearchService  # noqa: E402

USERS = 2000
LONG_CHATS, LONG_LEN = 10, 50
SHORT_CHATS, SHORT_LEN = 190, 8
VOCABULARY = 30_000
SYLLABLES = ["ka", "to", "ri", "ne", "mo", "sa", "lu", "pe", "di", "ga", "ví", "ró", "zu", "be", "fa",
             "ho", "ja", "ki", "lo", "ma", "nu", "po", "qui", "ré", "si", "ta", "ul", "ve", "wa", "xe",
             "yo", "zé", "an", "el", "in", "or", "us", "ch", "st", "tr"]


def vocabulary(rng: random.Random) -> list[str]:
    """Pseudo-words, most frequent first; some carry diacritics (as real chats do)."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 3, 4))))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


@dataclass
class Corpus:
    words: list[str]
    cum_weights: list[float]
    ranks: dict[str, int]
    rng: random.Random

    @classmethod
    def build(cls, seed: int) -> Corpus:
        rng = random.Random(seed)
        words = vocabulary(rng)
        weights = [1 / (rank + 1) ** 1.07 for rank in range(len(words))]  # Zipf-like
        ranks = {w: i for i, w in enumerate(words)}
        return cls(words, list(itertools.accumulate(weights)), ranks, rng)

    def text(self, n: int) -> str:
        return " ".join(self.rng.choices(self.words, cum_weights=self.cum_weights, k=n))

    def rank(self, word: str) -> int:
        return self.ranks[word]


@dataclass
class UserProbe:
    """What one user's benchmark queries need: their ids and words they actually wrote."""

    user: User
    long_chats: list[str]
    rare_word: str
    mid_word: str


@dataclass
class Report:
    scale: float
    users: int = 0
    chats: int = 0
    messages: int = 0
    load_seconds: float = 0.0
    index_seconds: float = 0.0
    documents: int = 0
    reconcile: dict[str, Any] = field(default_factory=dict)
    reconcile_seconds: float = 0.0
    reconcile_peak_rss_mb: float = 0.0
    latencies: dict[str, dict[str, float]] = field(default_factory=dict)
    sizes_mb: dict[str, float] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)


async def load_user(store: SQLiteStore, corpus: Corpus, index: int, base: float) -> UserProbe:
    """One user's 200 chats, written through the store's public API."""
    user = User(id=new_id(), email=f"user{index}@bench.example", display_name=f"User {index}", role="user",
                team_id="bench", created_at=base)
    await store.create_user(user)
    rng = corpus.rng
    long_chats: list[str] = []
    used: set[str] = set()
    t = base
    for c in range(LONG_CHATS + SHORT_CHATS):
        length = LONG_LEN if c < LONG_CHATS else SHORT_LEN
        t += rng.uniform(60, 86_400)
        chat = Chat(id=new_id(), user_id=user.id, team_id=user.team_id, title=corpus.text(rng.randint(2, 5)),
                    model="bench", created_at=t, updated_at=t + length * 30)
        await store.create_chat(chat)
        if c < LONG_CHATS:
            long_chats.append(chat.id)
        parent: str | None = None
        messages = []
        for i in range(length):
            role: Role = "user" if i % 2 == 0 else "assistant"
            content = corpus.text(rng.randint(6, 20) if role == "user" else rng.randint(20, 70))
            if len(used) < 400:
                used.update(content.split())
            m = Message(id=new_id(), chat_id=chat.id, user_id=user.id, role=role, content=content,
                        status="complete", created_at=t + i * 30, updated_at=t + i * 30, parent_id=parent,
                        team_id=user.team_id, model="bench" if role == "assistant" else None)
            parent = m.id
            messages.append(m)
        await asyncio.gather(*(store.create_message(m) for m in messages))
    ranked = sorted((corpus.rank(w), w) for w in used)
    rare = ranked[-1][1]  # the rarest word this user wrote
    mid = next((w for r, w in ranked if r > 200 and len(w) >= 6), ranked[len(ranked) // 2][1])
    return UserProbe(user=user, long_chats=long_chats, rare_word=rare, mid_word=mid)


def typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + ("q" if word[i] != "q" else "x") + word[i + 1 :]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pick(p: float) -> float:  # nearest rank
        return round(ordered[max(0, min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1))], 2)

    return {"n": len(ordered), "p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99),
            "mean": round(statistics.fmean(ordered), 2)}


async def no_agents(user: User, agent_id: str) -> object:
    """The bench's chats bind no agent (ChatService's agent check)."""
    raise NotFound("agent not found")


async def measure(samples: int, op: Callable[[int], Awaitable[object]]) -> dict[str, float]:
    """Sequential calls (one client): latency in milliseconds."""
    await op(0)  # warm the code path
    times = []
    for i in range(samples):
        started = time.perf_counter()
        await op(i)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def run_reindex(data_dir: Path) -> tuple[dict[str, Any], float, float]:
    """`python -m gust reindex` as a child: its report, wall time and peak RSS (MB)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONGODB", "MEILISEARCH", "REDIS"))}
    env.update({"DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT / "backend"), "LOG_LEVEL": "WARNING"})
    out_path, err_path = data_dir / "reindex.out", data_dir / "reindex.err"
    started = time.perf_counter()
    peak_kb = 0
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "gust", "reindex"], env=env, cwd=ROOT,
                                stdout=out, stderr=err)
        # The child's own high-water mark (VmHWM), sampled: wait4's ru_maxrss would not do,
        # Linux carries the parent's peak RSS into a child's maxrss when it execs.
        status = Path(f"/proc/{proc.pid}/status")
        while proc.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"reindex failed ({proc.returncode}): {err_path.read_text()[-2000:]}")
    return json.loads(out_path.read_text().strip().splitlines()[-1]), seconds, peak_kb / 1024


async def load_and_measure(args: argparse.Namespace, data_dir: Path, report: Report) -> None:
    """Load the corpus through the store, drain the indexer, time reads and searches."""
    settings = Settings(_env_file=None, data_dir=data_dir, local_model=False)
    store = SQLiteStore(settings.sqlite_path)
    index = SQLiteSearchIndex(settings.search_path)
    await store.start()
    await index.start()
    corpus = Corpus.build(args.seed)
    users = max(1, round(USERS * args.scale))
    print(f"# loading {users} users into {data_dir}", file=sys.stderr)

    started = time.perf_counter()
    probes: list[UserProbe] = []
    for u in range(users):
        probes.append(await load_user(store, corpus, u, base=1.7e9))
        if (u + 1) % max(1, users // 10) == 0:
            print(f"#   {u + 1} users, {time.perf_counter() - started:.0f}s", file=sys.stderr)
    report.load_seconds = round(time.perf_counter() - started, 1)
    report.users = users
    report.chats = users * (LONG_CHATS + SHORT_CHATS)
    report.messages = users * (LONG_CHATS * LONG_LEN + SHORT_CHATS * SHORT_LEN)

    print("# indexing", file=sys.stderr)
    indexer = Indexer(store, index, batch_size=args.batch_size, max_batches_per_cycle=50)
    started = time.perf_counter()
    while await store.count_search_pending():
        await indexer.run_once()
    report.index_seconds = round(time.perf_counter() - started, 1)
    report.documents = await index.count()

    print("# reads and searches", file=sys.stderr)
    chats, search = ChatService(store, no_agents), SearchService(store, index)
    rng = random.Random(args.seed + 1)
    picks = [rng.choice(probes) for _ in range(args.samples + 1)]
    common = corpus.words[0]

    report.latencies["list my chats (50)"] = await measure(
        args.samples, lambda i: chats.list_chats(picks[i].user, limit=50, cursor=None, archived=None))
    report.latencies["open a chat (50-message branch)"] = await measure(
        args.samples, lambda i: chats.view(picks[i].user, rng.choice(picks[i].long_chats)))
    queries: dict[str, Callable[[UserProbe], str]] = {
        "search: common word": lambda p: common,
        "search: rare word": lambda p: p.rare_word,
        "search: prefix": lambda p: p.mid_word[:4],
        "search: typo": lambda p: typo(p.mid_word, rng),
    }
    for name, query in queries.items():
        report.latencies[name] = await measure(
            args.samples, lambda i, q=query: search.search(picks[i].user, q(picks[i]), limit=20))  # type: ignore[misc]
    hits = await search.search(probes[0].user, probes[0].rare_word, limit=5)
    assert hits.hits, "the rare word of a user must find that user's message"
    typo_hits = await search.search(probes[0].user, typo(probes[0].mid_word, rng), limit=5)
    report.machine["typo_query_found_hits"] = bool(typo_hits.hits)

    await index.close()
    await store.close()


def run(args: argparse.Namespace) -> Report:
    report = Report(scale=args.scale)
    report.machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
                      "sqlite": sqlite3.sqlite_version, "load_before": [round(x, 2) for x in os.getloadavg()]}
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="gust-capacity-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(load_and_measure(args, data_dir, report))
        print("# reconcile (python -m gust reindex, child process)", file=sys.stderr)
        report.reconcile, seconds, rss = run_reindex(data_dir)
        report.reconcile_seconds, report.reconcile_peak_rss_mb = round(seconds, 1), round(rss, 1)
        report.sizes_mb = {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(data_dir.glob("*.db"))}
    finally:
        if not args.keep and not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
    report.machine["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report.machine["bench_peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return report


def markdown(r: Report, command: str) -> str:
    lines = [
        f"Command: `{command}`",
        "",
        f"Corpus: {r.users:,} users, {r.chats:,} chats, {r.messages:,} messages "
        f"({r.documents:,} search documents); store {r.sizes_mb.get('gust.db', 0):,} MB, "
        f"search {r.sizes_mb.get('search.db', 0):,} MB.",
        "",
        f"- Load through the store: {r.load_seconds:,} s "
        f"({(r.messages + r.chats) / max(r.load_seconds, 1e-9):,.0f} records/s)",
        f"- Indexing (indexer, batches of pending records): {r.index_seconds:,} s "
        f"= **{r.documents / max(r.index_seconds, 1e-9):,.0f} docs/s**",
        f"- Reconcile (`python -m gust reindex`, nothing to repair): {r.reconcile_seconds:,} s, "
        f"**peak RSS {r.reconcile_peak_rss_mb} MB**; report {json.dumps(r.reconcile)}",
        "",
        "| operation | n | p50 ms | p95 ms | p99 ms | mean ms |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in r.latencies.items():
        lines.append(f"| {name} | {s['n']:.0f} | {s['p50']} | {s['p95']} | {s['p99']} | {s['mean']} |")
    m = r.machine
    lines += [
        "",
        f"Machine: {m['cpus']} CPUs, Python {m['python']}, SQLite {m['sqlite']}; load average "
        f"{m['load_before']} before, {m['load_after']} after; benchmark process peak RSS "
        f"{m['bench_peak_rss_mb']} MB; typo query found hits: {m['typo_query_found_hits']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the brief's 2,000 users")
    parser.add_argument("--samples", type=int, default=300, help="timed calls per operation")
    parser.add_argument("--batch-size", type=int, default=500, help="indexer batch size (SEARCH_BATCH_SIZE)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", help="where to build the corpus (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary DATA_DIR")
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    args = parser.parse_args()
    report = run(args)
    command = "PYTHONPATH=backend .venv/bin/python bench/capacity.py " + " ".join(sys.argv[1:])
    print(markdown(report, command.strip()))
    if args.json:
        Path(args.json).write_text(json.dumps(report.__dict__, indent=2))


if __name__ == "__main__":
    main()
