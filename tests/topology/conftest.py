"""The production topology: FerretDB + Redis + Meilisearch + Gust processes + a slow scripted upstream.

The servers belong to the suite (one set per session, restarted by the fault tests on the same
port and data); every test gets fresh Gust processes with its own database and search index,
and a fake OpenAI upstream in the test process that both Gust processes call.
"""

from __future__ import annotations

import itertools
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tests.support.app_server import ROOT, ServerProcess
from tests.support.env import free_port
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.ferretdb import FerretDB
from tests.support.meili_server import MeiliServer
from tests.support.redis_server import RedisServer
from tests.support.wait import until
from tests.topology.harness import REPORT

SECRET = "topology-shared-secret-key-0123456789-abcdefghijkl"
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
OWNER_TIMEOUT = 5.0  # GENERATION_OWNER_TIMEOUT in the tests: a dead owner is noticed within this
PING = 2.0  # SSE_PING_INTERVAL: shorter than every silence the tests script
MODELS = ["steady", "slow-start", "long"]
_numbers = itertools.count(1)


def answer_tokens(prefix: str, n: int) -> list[str]:
    """Distinct tokens (some multi-byte) so that a gap or a repeat anywhere changes the text."""
    return [f"{prefix}{i}{'é' if i % 7 == 0 else ''} " for i in range(n)]


def expected_text(script: Script) -> str:
    return "".join(script.tokens or [])


@dataclass
class Topology:
    redis: RedisServer
    ferret: FerretDB
    meili: MeiliServer
    upstream: FakeUpstream
    root: Path
    name: str
    processes: list[ServerProcess] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment shared by every Gust process of the test: same store, bus, index and secret."""
        return {
            "LOCAL_MODEL": "false",
            "MODELS_FILE": str(self.upstream.models_file(self.root, MODELS)),
            "AUTH_SECRET_KEY": SECRET,
            "GUST_ENV": "production",
            "LOG_LEVEL": "INFO",
            "BCRYPT_ROUNDS": "4",
            "REGISTRATION": "open",
            "RATE_LIMIT_LOGIN_PER_MINUTE": "0",
            "RATE_LIMIT_MESSAGES_PER_MINUTE": "0",
            "GENERATE_TITLES": "false",
            "MONGODB_URI": self.ferret.uri,
            "MONGODB_DB_NAME": self.name,
            "REDIS_URL": self.redis.url,
            "MEILISEARCH_HOST": self.meili.url,
            "MEILISEARCH_API_KEY": self.meili.key,
            "MEILISEARCH_INDEX": self.name,
            "SEARCH_INDEX_INTERVAL": "0.2",
            "SEARCH_BACKOFF_MAX": "1",
            "CHECKPOINT_INTERVAL": "0.2",
            "SSE_PING_INTERVAL": str(PING),
            "GENERATION_OWNER_TIMEOUT": str(OWNER_TIMEOUT),
            "UPSTREAM_FIRST_TOKEN_TIMEOUT": "30",
            "UPSTREAM_IDLE_TIMEOUT": "30",
            "SHUTDOWN_TIMEOUT": "2",
            "MONGODB_TIMEOUT_MS": "2000",  # a store call gives up after 2 s (then 503)
            **extra,
        }

    async def gust(self, label: str, **extra: str) -> ServerProcess:
        """`python -m gust serve` on a free port, ready (answering /health)."""
        port = free_port()
        env = {"DATA_DIR": str(self.root / f"gust-{label}"), "PORT": str(port), "HOST": "127.0.0.1",
               **self.env(**extra)}
        proc = ServerProcess([sys.executable, "-m", "gust", "serve"], env, port, cwd=self.root)
        self.processes.append(proc)
        await proc.wait_ready(60)
        return proc

    async def gunicorn(self, workers: int = 2, **extra: str) -> ServerProcess:
        """gunicorn with the project's config file (`gunicorn.conf.py`) and `workers` workers."""
        port = free_port()
        env = {"DATA_DIR": str(self.root / "gust-gunicorn"), **self.env(**extra)}
        proc = ServerProcess(
            [GUNICORN, "-c", str(ROOT / "gunicorn.conf.py"), "-w", str(workers), "-b", f"127.0.0.1:{port}",
             "--control-socket", str(self.root / "gunicorn.ctl"), "gust.wsgi:application"],
            env, port, cwd=ROOT,
        )
        self.processes.append(proc)
        await proc.wait_ready(90)
        return proc

    async def ready(self, proc: ServerProcess, timeout: float = 60) -> bool:
        """Whether /health/ready answers 200 within `timeout` (a bounded wait, not a timing check)."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:

            async def answers() -> bool:
                try:
                    async with http.get(proc.url + "/health/ready") as resp:
                        return resp.status == 200
                except (TimeoutError, aiohttp.ClientError):
                    return False

            return await until(answers, timeout=timeout, interval=0.25)

    def tracebacks(self) -> int:
        return sum(proc.log().count("Traceback") for proc in self.processes)

    async def stop_all(self) -> None:
        for proc in self.processes:
            if proc.proc.poll() is None:
                proc.signal(signal.SIGTERM)
        for proc in self.processes:
            try:
                await proc.wait_exit(20)
            except AssertionError:
                print(f"TOPOLOGY {self.name}: process on port {proc.port} ignored SIGTERM for 20 s")
            proc.kill()


Servers = tuple[RedisServer, FerretDB, MeiliServer]


@pytest.fixture(scope="session")
def topology_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The suite's three servers (started by the first test that needs them); skips, or fails
    in CI, when a binary is missing."""
    root = tmp_path_factory.mktemp("topology-servers")
    servers = (RedisServer.from_env(root / "redis"), FerretDB.from_env(root / "ferret"),
               MeiliServer.from_env(root / "meili"))
    try:
        yield servers
    finally:
        for server in servers:
            server.kill()


@pytest.fixture
async def topology(topology_servers: Servers, tmp_path: Path) -> AsyncIterator[Topology]:
    redis, ferret, meili = topology_servers
    for server in topology_servers:  # up and answering, whatever an earlier test left
        await server.ensure_up()
    upstream = await FakeUpstream().start()
    topo = Topology(redis, ferret, meili, upstream, tmp_path, f"topo{next(_numbers)}_{free_port()}")
    try:
        yield topo
    finally:
        await topo.stop_all()
        await upstream.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # No pooling: every request is a new connection, as clients behind a balancer reconnect.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("production topology counts")
        for line in REPORT:
            terminalreporter.write_line(line)
