"""Embedded retrieval latency: SQLite FTS5 + sqlite-vec's exact cosine scan within a scope.

    PYTHONPATH=backend .venv/bin/python bench/retrieval_scan.py --passages 100000
    PYTHONPATH=backend .venv/bin/python bench/retrieval_scan.py --passages 2000 --samples 10   # smoke

All passages belong to one user (the worst case: the scope selects them all, so the vector
list scans every one); vectors are random unit vectors of `--dimensions` (384: MiniLM),
texts 60-120 words from a Zipf-like vocabulary. Reports p50/p95 of hybrid searches (a
common and a rare word plus a vector), keyword-only and vector-only, limit 8.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from gust.adapters.retrieval.sqlite_vec import SQLiteRetrieval
from gust.domain.retrieval import Passage, RetrievalScope


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


async def run(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(7)
    vocabulary = [f"w{i}" for i in range(20_000)]
    weights = 1 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    with tempfile.TemporaryDirectory() as tmp:
        index = SQLiteRetrieval(Path(tmp) / "retrieval.db")
        await index.start()
        start = time.perf_counter()
        for base in range(0, args.passages, 1000):
            batch = []
            for i in range(base, min(base + 1000, args.passages)):
                words = rng.choice(len(vocabulary), size=int(rng.integers(60, 120)), p=weights)
                vector = rng.standard_normal(args.dimensions).astype(np.float32)
                vector /= np.linalg.norm(vector)
                batch.append(Passage(id=f"p{i}", file_id=f"f{i // 50}", owner_id="u",
                                     text=" ".join(vocabulary[w] for w in words), vector=vector.tolist()))
            await index.index(batch)
        print(f"indexed {args.passages} passages in {time.perf_counter() - start:.1f} s "
              f"({(Path(tmp) / 'retrieval.db').stat().st_size / 2**20:.0f} MiB)")
        scope = RetrievalScope(user_id="u", team_ids=frozenset({"t"}))
        query = rng.standard_normal(args.dimensions).astype(np.float32)
        query /= np.linalg.norm(query)
        cases = {"hybrid, common word": ("w1 w5", query.tolist()),
                 "hybrid, rare word": ("w19000", query.tolist()),
                 "keyword only": ("w1 w5", None),
                 "vector only": ("", query.tolist())}
        for name, (text, vector) in cases.items():
            await index.search(text, vector, scope, 8)
            samples = []
            for _ in range(args.samples):
                t = time.perf_counter()
                await index.search(text, vector, scope, 8)
                samples.append(time.perf_counter() - t)
            print(f"{name}: {percentiles(samples)}")
        await index.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--passages", type=int, default=100_000)
    parser.add_argument("--dimensions", type=int, default=384)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    asyncio.run(run(args))
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
