"""Settings: production secret rules, the generated development key, readable errors."""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from gust.__main__ import cli
from gust.config import ConfigError, Settings, load_settings

STRONG = "s" * 32


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No GUST_/AUTH_ variables from the caller, and no .env file in the working directory."""
    for name in list(os.environ):
        if name.startswith(("GUST_", "AUTH_", "PORT", "LOG_", "DATA_DIR", "BCRYPT", "MONGODB", "DEBUG")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_defaults_need_nothing() -> None:
    settings = load_settings()
    assert settings.port == 8100
    assert settings.gust_env == "development"
    assert settings.data_dir == Path("data")
    assert settings.mongodb_uri is None
    assert settings.sqlite_path == Path("data") / "gust.db"


def test_production_refuses_a_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUST_ENV", "production")
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert message.startswith("invalid configuration:")
    assert "AUTH_SECRET_KEY is required when GUST_ENV=production" in message
    assert "secrets.token_urlsafe" in message  # says how to make one


@pytest.mark.parametrize("secret", ["short", "x" * 31, "é" * 15])  # "é" is 2 bytes: 30 bytes
def test_production_refuses_a_short_secret(monkeypatch: pytest.MonkeyPatch, secret: str) -> None:
    monkeypatch.setenv("GUST_ENV", "production")
    monkeypatch.setenv("AUTH_SECRET_KEY", secret)
    with pytest.raises(ConfigError, match="AUTH_SECRET_KEY must be at least 32 bytes"):
        load_settings()


def test_production_accepts_a_long_secret_and_never_writes_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GUST_ENV", "production")
    monkeypatch.setenv("AUTH_SECRET_KEY", STRONG)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    assert settings.production
    assert settings.secret_key() == STRONG
    assert not (tmp_path / "data" / "secret_key").exists()


def test_development_generates_the_key_once_with_mode_0600(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = load_settings(data_dir=data)
    key = settings.secret_key()
    path = data / "secret_key"
    assert path.read_text().strip() == key
    assert len(key.encode()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Reused by later calls and by later processes (a new Settings object).
    assert settings.secret_key() == key
    assert load_settings(data_dir=data).secret_key() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_readable_key_file_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(data_dir=tmp_path)
    key = settings.secret_key()
    (tmp_path / "secret_key").chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="gust.config"):
        assert settings.secret_key() == key
    assert any("chmod 600" in r.getMessage() for r in caplog.records)
    assert key not in caplog.text


def test_a_truncated_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("too-short\n")
    with pytest.raises(ConfigError, match="shorter than 32 bytes"):
        load_settings(data_dir=tmp_path).secret_key()


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("PORT", "eighty", "PORT: Input should be a valid integer"),
        ("PORT", "70000", "PORT: Input should be less than or equal to 65535"),
        ("LOG_LEVEL", "loud", "LOG_LEVEL: Value error, unknown log level 'LOUD'"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT: Input should be 'plain' or 'json'"),
        ("GUST_ENV", "staging", "GUST_ENV: Input should be 'development' or 'production'"),
        ("BCRYPT_ROUNDS", "2", "BCRYPT_ROUNDS: Input should be greater than or equal to 4"),
        ("MAX_BODY_BYTES", "-1", "MAX_BODY_BYTES: Input should be greater than or equal to 1024"),
        ("DEBUG", "perhaps", "DEBUG: Input should be a valid boolean"),
    ],
)
def test_invalid_values_give_a_readable_error(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert expected in str(err.value)
    assert "pydantic" not in str(err.value)  # no links into pydantic's docs, no traceback noise


def test_every_bad_value_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "x")
    monkeypatch.setenv("LOG_FORMAT", "xml")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "PORT:" in str(err.value) and "LOG_FORMAT:" in str(err.value)


def test_dotenv_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PORT=9001\nLOG_FORMAT=json\n# a comment\nMONGODB_DB_NAME=fromfile\n")
    monkeypatch.setenv("MONGODB_DB_NAME", "fromenv")
    settings = load_settings()
    assert settings.port == 9001
    assert settings.log_format == "json"
    assert settings.mongodb_db_name == "fromenv"


def test_cli_prints_the_error_and_exits_2(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GUST_ENV", "production")
    assert cli(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gust: invalid configuration:")
    assert "AUTH_SECRET_KEY is required" in err
    assert "Traceback" not in err


def test_settings_ignore_unknown_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOMETHING_ELSE", "1")
    assert isinstance(load_settings(), Settings)



def _boot_together(data: Path, count: int) -> tuple[list[str], list[Exception]]:
    settings = load_settings(data_dir=data)
    barrier = threading.Barrier(count)
    keys: list[str] = []
    errors: list[Exception] = []

    def boot() -> None:
        barrier.wait()
        try:
            keys.append(settings.secret_key())
        except Exception as exc:  # noqa: BLE001 - collected and asserted by the caller
            errors.append(exc)

    threads = [threading.Thread(target=boot) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return keys, errors


def test_workers_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    """gunicorn workers boot at the same moment: none may read a half-written key file."""
    for attempt in range(20):
        data = tmp_path / f"data{attempt}"
        keys, errors = _boot_together(data, 8)
        assert errors == []
        assert len(keys) == 8 and len(set(keys)) == 1
        assert (data / "secret_key").read_text().strip() == keys[0]
        assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
        assert [p.name for p in data.iterdir()] == ["secret_key"]  # no temporary files left
