"""The isolation port: run a parser over untrusted bytes in a separate, limited process.

Parsing what users upload (import files, archives, documents) can be made to take huge
memory or time by a crafted file. Such work runs through this port, never on the event
loop: a fresh worker process with a memory cap (RLIMIT_AS), a CPU cap and a wall-time
deadline, killed when it overruns. The server only sends the bytes and reads JSON back.

A target is "package.module:function", a function `(data: bytes, params: dict) ->
Iterable[JSON value]` of our own code (for example gust.services.import_read:parse_file).
A domain error it raises (gust.domain.errors.GustError) comes back as the same error (code,
status, message, detail); running out of memory is a 413 `upload_too_complex`, running out
of time a 422 `parse_timeout`; too many parses at once a 503 `parse_busy`, and a second
parse for the same `owner` (a user id) while the first runs a 429 `parse_busy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

Upload = bytes | bytearray


class Isolation(Protocol):
    async def run(
        self, target: str, data: Upload, params: Mapping[str, Any], *, owner: str | None = None
    ) -> list[Any]:
        """The items `target(data, params)` yields, computed in a limited worker process."""
        ...
