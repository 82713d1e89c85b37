"""The isolated parse worker: `python -m gust.adapters.isolation.worker TARGET MEMORY SECONDS`.

Caps its own address space (RLIMIT_AS = MEMORY bytes) and CPU time (RLIMIT_CPU) before it
imports or reads anything, then reads one JSON line of parameters and the data from stdin,
calls TARGET ("package.module:function", our own code only) and writes one JSON line per
item, then `{"done": true}`, or `{"error": {...}}` for a domain error. Exit code 3 means
the memory cap was hit (nothing more can be written safely then).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

MEMORY_EXIT = 3
TARGET_PREFIX = "gust."


def _limit(memory_bytes: int, seconds: float) -> None:
    try:
        import resource
    except ImportError:  # not a POSIX system: the parent's deadline still applies
        return
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    cpu = int(seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))


def _resolve(target: str) -> Callable[[bytes, dict[str, Any]], Iterable[Any]]:
    module_name, _, function = target.partition(":")
    if not module_name.startswith(TARGET_PREFIX) or not function:
        raise ValueError(f"not a Gust parse target: {target!r}")
    module = importlib.import_module(module_name)
    fn: Callable[[bytes, dict[str, Any]], Iterable[Any]] = getattr(module, function)
    return fn


def _line(out: Any, value: Any) -> None:
    out.write(json.dumps(value, separators=(",", ":")).encode() + b"\n")


def main(argv: list[str]) -> int:
    target, memory, seconds = argv[1], int(argv[2]), float(argv[3])
    _limit(memory, seconds)
    out = sys.stdout.buffer
    try:
        from gust.domain.errors import GustError

        params = json.loads(sys.stdin.buffer.readline())
        data = sys.stdin.buffer.read()
        fn = _resolve(target)
        try:
            for item in fn(data, params):
                _line(out, {"item": item})
        except GustError as exc:
            _line(out, {"error": {"code": exc.code, "message": exc.message, "status": exc.status,
                                  "detail": exc.detail}})
            out.flush()
            return 0
        except RecursionError:
            _line(out, {"error": {"code": "upload_too_deep", "status": 422, "detail": {},
                                  "message": "the file nests too deeply to be read"}})
            out.flush()
            return 0
        _line(out, {"done": True})
        out.flush()
    except MemoryError:
        os._exit(MEMORY_EXIT)  # allocating anything more may fail: no message, only the code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
