"""README, .env.example, docker-compose.yml and Dockerfile stay true to the code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from gust.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTING_LINE = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$")
SECRET = "k" * 40


def setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


def env_example() -> dict[str, str]:
    """NAME -> default value, from the `# NAME=value` lines of .env.example."""
    found: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = SETTING_LINE.match(line)
        if match:
            assert match.group(1) not in found, f"{match.group(1)} is listed twice"
            found[match.group(1)] = match.group(2)
    return found


def settings_from(values: dict[str, str], tmp_path: Path) -> Settings:
    env_file = tmp_path / "example.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return Settings(_env_file=env_file)


# -- .env.example ------------------------------------------------------------------------
def test_env_example_lists_every_setting_and_nothing_else() -> None:
    listed = set(env_example())
    assert sorted(setting_names() - listed) == [], "settings missing from .env.example"
    assert sorted(listed - setting_names()) == [], ".env.example names unknown settings"


def test_env_example_defaults_are_the_real_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Uncommenting every line that shows a value changes nothing."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    shown = {k: v for k, v in env_example().items() if v}
    assert settings_from(shown, tmp_path) == Settings(_env_file=None)


def test_every_setting_in_env_example_has_a_comment() -> None:
    described = False
    for line in (ROOT / ".env.example").read_text().splitlines():
        if SETTING_LINE.match(line):
            assert described, f"no comment explains {line!r}"
        elif line.startswith("# ") and not line.startswith("# ---"):
            described = True
        elif not line.strip() or line.startswith("# ---"):
            described = False


# -- README ------------------------------------------------------------------------------
def test_readme_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].startswith("# Gust")
    first_block = text.split("```")[1]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["./run.sh", "./run.sh test"]
    assert text.index("./run.sh") < text.index("\n## ")


def test_readme_configuration_table_matches_config() -> None:
    text = (ROOT / "README.md").read_text()
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", table, re.M)
    assert len(rows) >= 15
    defaults = env_example()
    for name, default in rows:
        assert name in setting_names(), f"README documents {name}, which config.py does not read"
        shown = re.fullmatch(r"`([^`]*)`", default.strip())
        if shown:  # a literal default must be the real one
            assert shown.group(1) == defaults[name], (name, shown.group(1), defaults[name])


# -- docker-compose.yml --------------------------------------------------------------------
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def interpolate(value: str, given: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, enough for our file."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if name in given:
            return given[name]
        if op == ":?":
            raise AssertionError(f"{name} is required: {arg}")
        return arg or ""

    return re.sub(r"\$\{([A-Z_]+)(?:(:-|:\?)([^}]*))?\}", one, value)


def test_compose_services_have_healthchecks_and_volumes() -> None:
    data = compose()
    services = data["services"]
    assert set(services) == {"app", "mongodb", "meilisearch", "redis"}
    declared_volumes = set(data["volumes"])
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
        mounts = [v.split(":")[0] for v in service["volumes"]]
        assert mounts and set(mounts) <= declared_volumes, name  # named volumes only
    assert "/health" in " ".join(services["app"]["healthcheck"]["test"])
    for dependency in ("mongodb", "meilisearch", "redis"):
        assert services["app"]["depends_on"][dependency]["condition"] == "service_healthy"
    assert [p for s in ("mongodb", "meilisearch", "redis") for p in services[s].get("ports", [])] == []


def test_compose_app_runs_gunicorn_with_several_workers_and_valid_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = compose()["services"]["app"]
    command = [interpolate(part, {}) for part in app["command"]]
    assert command[0] == "gunicorn" and command[-1] == "gust.wsgi:application"
    assert int(command[command.index("--workers") + 1]) > 1
    environment = app["environment"]
    assert set(environment) <= setting_names(), set(environment) - setting_names()
    assert environment["REDIS_URL"]  # several workers: streams resume through Redis
    with pytest.raises(AssertionError, match="AUTH_SECRET_KEY is required"):
        interpolate(environment["AUTH_SECRET_KEY"], {})
    given = {"AUTH_SECRET_KEY": SECRET, "MEILI_MASTER_KEY": "m" * 24}
    values = {k: interpolate(str(v), given) for k, v in environment.items()}
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    settings = settings_from(values, tmp_path)
    assert settings.production
    assert settings.mongodb_uri and settings.meilisearch_host and settings.redis_url
    assert settings.secret_key() == SECRET


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no `docker compose` plugin nor docker-compose here; the YAML checks above run anyway")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AUTH_SECRET_KEY": SECRET,
           "MEILI_MASTER_KEY": "m" * 24}
    args = [*cli, "-f", str(ROOT / "docker-compose.yml"), "--project-directory", str(tmp_path)]
    ok = subprocess.run([*args, "config", "-q"], env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    missing = subprocess.run([*args, "config", "-q"], env={**env, "AUTH_SECRET_KEY": ""},
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0
    assert "AUTH_SECRET_KEY" in missing.stderr


# -- Dockerfile --------------------------------------------------------------------------------
def test_dockerfile_is_slim_non_root_locked_and_healthchecked() -> None:
    text = (ROOT / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)  # continuation lines joined
    instructions = [line for line in joined.splitlines() if line and not line.startswith("#")]
    final_stage = instructions[max(i for i, line in enumerate(instructions) if line.startswith("FROM "))]
    assert "slim" in final_stage
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert any("uv sync --frozen" in line for line in instructions)
    healthcheck = next(line for line in instructions if line.startswith("HEALTHCHECK"))
    assert "/health" in healthcheck
    assert any(line.startswith("CMD") and "gunicorn" in line for line in instructions)
    # Everything it copies from the build context exists.
    for line in instructions:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    ignored = (ROOT / ".dockerignore").read_text().split()
    for private in (".env", "data", ".venv", ".git"):
        assert private in ignored
