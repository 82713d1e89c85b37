"""A FerretDB process of a test's own (the MongoDB wire protocol on SQLite), to kill, restart,
pause and resume: store outages here and in tests/topology.

The binary comes from TEST_FERRETDB_BIN (.ci/run builds it and exports the path), else the
CI cache: skipped with a reason outside CI when missing, a failure in CI.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.child_server import CACHE, ChildServer, binary

FERRETDB_VERSION = "v1.24.2"


class FerretDB(ChildServer):
    """One FerretDB on a fixed port and data directory: `kill()` then `start()` is the same
    server coming back with its data; `pause()`/`resume()` make it hang (SIGSTOP/SIGCONT)."""

    name = "ferretdb"

    @classmethod
    def from_env(cls, directory: Path) -> FerretDB:
        found = binary("TEST_FERRETDB_BIN", CACHE / f"ferretdb-{FERRETDB_VERSION}", "FerretDB")
        return cls(found, directory)

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        return [self.binary, "--handler=sqlite", f"--sqlite-url=file:{self.directory}/",
                f"--listen-addr=127.0.0.1:{self.port}", f"--state-dir={self.directory}",
                "--debug-addr=-", "--telemetry=disable", "--log-level=error"]
