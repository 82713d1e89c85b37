"""ports/isolation.py with one short-lived worker process per call (adapters/isolation/worker.py).

A fresh process per parse, not a pool: nothing a hostile file did can outlive its request,
the memory cap applies to that file alone, and an overrun is ended with SIGKILL. Starting
the interpreter costs a few hundred milliseconds, small next to an upload; the event loop
only awaits the pipes. The worker gets a minimal environment (no secrets, no database URLs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gust.adapters.isolation.worker import MEMORY_EXIT
from gust.domain.errors import GustError, Overloaded, PayloadTooLarge, RateLimited, ValidationError
from gust.ports.isolation import Upload

log = logging.getLogger(__name__)

SEND_SLICE = 1024 * 1024
MAX_LINE = 1 << 30  # one item (one conversation) of the worker's output
_KEPT_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "SYSTEMROOT")


def _worker_env() -> dict[str, str]:
    import gust

    package_root = str(Path(gust.__file__).resolve().parents[1])
    env = {name: os.environ[name] for name in _KEPT_ENV if name in os.environ}
    extra = os.environ.get("PYTHONPATH")
    env["PYTHONPATH"] = package_root + (os.pathsep + extra if extra else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class ProcessIsolation:
    def __init__(self, *, memory_bytes: int, timeout: float, max_concurrent: int) -> None:
        self.memory_bytes = memory_bytes
        self.timeout = timeout
        self.max_concurrent = max_concurrent
        self.active = 0
        self._owners: set[str] = set()  # one parse at a time per owner (a user)
        self._env = _worker_env()

    async def run(
        self, target: str, data: Upload, params: Mapping[str, Any], *, owner: str | None = None
    ) -> list[Any]:
        if owner is not None and owner in self._owners:
            raise RateLimited("your previous upload is still being read; retry when it is done",
                              code="parse_busy", retry_after=5)
        if self.active >= self.max_concurrent:
            raise Overloaded("too many uploads are being read right now; retry shortly",
                             code="parse_busy", retry_after=5)
        self.active += 1
        if owner is not None:
            self._owners.add(owner)
        try:
            return await self._run(target, data, params)
        finally:
            self.active -= 1
            self._owners.discard(owner or "")

    async def _run(self, target: str, data: Upload, params: Mapping[str, Any]) -> list[Any]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gust.adapters.isolation.worker",
            target, str(self.memory_bytes), str(self.timeout),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self._env, start_new_session=True, limit=MAX_LINE,
        )
        header = json.dumps(dict(params)).encode() + b"\n"
        try:
            messages, err = await asyncio.wait_for(self._exchange(proc, header, data), self.timeout + 5)
        except TimeoutError:
            raise ValidationError(f"reading the file took longer than {self.timeout:g} s",
                                  code="parse_timeout") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        return self._result(proc.returncode, messages, err)

    @staticmethod
    async def _exchange(
        proc: asyncio.subprocess.Process, header: bytes, data: Upload
    ) -> tuple[list[Any], bytes]:
        """Send the data in slices (never a second copy of an upload in the pipe's buffer)
        while reading the worker's output line by line (never all of it at once)."""
        if proc.stdin is None or proc.stdout is None or proc.stderr is None:
            raise RuntimeError("the parse worker was started without pipes")
        reading = asyncio.gather(_messages(proc.stdout), proc.stderr.read())
        try:
            try:
                view = memoryview(data)
                proc.stdin.write(header)
                for start in range(0, len(view), SEND_SLICE):
                    proc.stdin.write(view[start:start + SEND_SLICE])
                    await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the worker stopped reading (it failed or hit a limit): its output says why
            messages, err = await reading
        except BaseException:
            reading.cancel()
            raise
        await proc.wait()
        return messages, err

    def _result(self, code: int | None, messages: list[Any], err: bytes) -> list[Any]:
        items: list[Any] = []
        for message in messages:
            if "item" in message:
                items.append(message["item"])
            elif "error" in message:
                raise _error(message["error"])
            elif message.get("done"):
                return items
        if code == MEMORY_EXIT or b"MemoryError" in err:
            raise PayloadTooLarge(
                f"reading the file needed more than {self.memory_bytes >> 20} MiB", code="upload_too_complex"
            )
        if code is not None and code < 0 and -code in (signal.SIGKILL, signal.SIGXCPU):
            raise ValidationError(f"reading the file took longer than {self.timeout:g} s",
                                  code="parse_timeout")
        log.error("parse worker failed (exit %s): %s", code, err[-2000:].decode(errors="replace"))
        raise RuntimeError(f"the parse worker failed with exit code {code}")


async def _messages(stream: asyncio.StreamReader) -> list[Any]:
    """The worker's JSON lines, decoded as they arrive; a cut last line ends them."""
    messages: list[Any] = []
    while line := await stream.readline():
        try:
            messages.append(json.loads(line))
        except ValueError:
            break  # the worker died mid-line: its exit code says why
    return messages


def _error(body: dict[str, Any]) -> GustError:
    raw_detail = body.get("detail")
    detail: dict[str, Any] = raw_detail if isinstance(raw_detail, dict) else {}
    error = GustError(str(body.get("message", "")), code=str(body.get("code", "bad_request")), **detail)
    status = body.get("status")
    error.status = status if isinstance(status, int) and 400 <= status < 500 else 400
    return error
