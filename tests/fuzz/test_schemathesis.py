"""Schemathesis over the live app's OpenAPI document: signed in (admin, member) and anonymous.

Each mode runs schemathesis's engine (what `schemathesis run` runs): the examples, coverage and
fuzzing phases with positive and negative data for every operation, then the stateful phase
along the links between operations. Any server error, any response outside its documented
status codes, schema or content type fails the build, with every distinct finding listed.
The case counts are printed for the record (`-s` not needed).

GUST_FUZZ_MAX_EXAMPLES and GUST_FUZZ_SEED change the budget and the seed (deterministic by default).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import schemathesis
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic
from schemathesis.schemas import BaseSchema

from tests.fuzz.live_app import LiveApp

CHECKS = ("not_a_server_error", "status_code_conformance", "response_schema_conformance",
          "content_type_conformance")
MAX_EXAMPLES = int(os.environ.get("GUST_FUZZ_MAX_EXAMPLES", "40"))
SEED = int(os.environ.get("GUST_FUZZ_SEED", "18"))


@dataclass
class FuzzRun:
    mode: str
    statistic: Statistic = field(default_factory=Statistic)
    per_phase: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    transitions: int = 0  # links between operations (declared or inferred) the stateful phase can follow


RUNS: dict[str, FuzzRun] = {}
ENDLESS_STREAMS = ["/api/events"]


@pytest.fixture
def quiet_access_log() -> Iterator[None]:
    access_log = logging.getLogger("gust.access")
    level = access_log.level
    access_log.setLevel(logging.ERROR)  # thousands of 4xx lines otherwise; 5xx still show
    yield
    access_log.setLevel(level)


@pytest.fixture
def live(request: pytest.FixtureRequest, tmp_path: Path, quiet_access_log: None) -> Iterator[LiveApp]:
    """A fresh app per mode: what one mode does (an admin disabling a member...) cannot change
    what the next one sees. The admin (the first account) and a member of its team exist."""
    live = LiveApp.start(tmp_path)
    live.sign_up("admin", "fuzz-admin@example.com")
    live.sign_up("member", "fuzz-member@example.com")
    yield live
    live.stop()


def _config(live: LiveApp, mode: str) -> schemathesis.Config:
    headers = {}
    if mode != "anonymous":
        headers["Authorization"] = f"Bearer {live.accounts[mode].token}"
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # The app answers over real HTTP on a shared 2-core machine: no timing health checks.
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large", "large_base_example"],
            "base-url": live.url,
            "headers": headers,
            "request-timeout": 30,
            "workers": 1,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none",
                           "mode": "all"},
            "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
            "phases": {"stateful": {"max-steps": 10}},
        }
    )


def _run(live: LiveApp, mode: str) -> FuzzRun:
    document = live.app.app.openapi  # what GET /api/openapi.json serves (tests/api/test_openapi.py)
    schema: BaseSchema = schemathesis.openapi.from_dict(document, config=_config(live, mode))
    if mode != "anonymous":
        # The user's notification stream never ends while the user is signed in: every case
        # would wait out the request timeout. Anonymous runs still fuzz it (401 at once); what
        # it sends is checked in tests/models/test_titles.py.
        schema = schema.exclude(method="GET", path=ENDLESS_STREAMS)
    run = FuzzRun(mode)
    for event in from_schema(schema).execute():
        if isinstance(event, events.PhaseStarted) and event.payload is not None:
            run.transitions = event.payload.transitions_total
        elif isinstance(event, events.ScenarioFinished):
            run.statistic.on_scenario_finished(event.recorder)
            run.per_phase[event.phase.value] += len(event.recorder.cases)
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"{event.label}: {event.info.title}: {event.info.message}")
        elif isinstance(event, events.FatalError):
            run.errors.append(f"fatal: {event.exception!r}")
        elif isinstance(event, events.EngineFinished):
            run.seconds = event.running_time
    RUNS[mode] = run
    return run


def _findings(run: FuzzRun) -> list[str]:
    lines = list(run.errors)
    for label, groups in sorted(run.statistic.failures.items()):
        for group in groups.values():
            for failure in group.failures:
                lines.append(f"{label}: {failure.title}: {failure.message.strip()[:300]}")
                if group.code_sample:
                    lines.append(f"    {group.code_sample.strip()[:600]}")
    return lines


@pytest.mark.parametrize("mode", ["admin", "member", "anonymous"])
def test_fuzz(live: LiveApp, mode: str) -> None:
    run = _run(live, mode)
    findings = _findings(run)
    assert run.statistic.total_cases > 0
    assert not findings, f"{len(findings)} schemathesis findings ({mode}):\n" + "\n".join(findings)


def test_case_counts(capsys: pytest.CaptureFixture[str]) -> None:
    """Print how many cases each mode ran, per phase (skipped when no fuzz test ran)."""
    if not RUNS:
        pytest.skip("the fuzz tests were not selected in this run")
    with capsys.disabled():
        total = sum(run.statistic.total_cases for run in RUNS.values())
        print(f"\nschemathesis {schemathesis.__version__}: {total} cases in all (seed {SEED}, "
              f"max examples {MAX_EXAMPLES})")
        for mode, run in RUNS.items():
            phases = ", ".join(f"{phase} {n}" for phase, n in sorted(run.per_phase.items()))
            print(f"  {mode}: {run.statistic.total_cases} cases in {run.seconds:.0f}s ({phases}; "
                  f"{run.transitions} transitions for the stateful phase)")
