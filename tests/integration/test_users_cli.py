"""`python -m gust users ...` in a real child process on a real store (SQLite and MongoDB);
the accounts it makes sign in over HTTP on the real app."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.app_server import make_settings, start_app, subprocess_env
from tests.support.backends import Backend

SECRET = "test-secret-key-that-is-long-enough-0123456789"

pytestmark = pytest.mark.both_stores  # each command on SQLite, then MongoDB


@dataclass
class Store:
    data_dir: Path
    env: dict[str, str]
    overrides: dict[str, Any]

    async def gust(self, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gust", *args, env=subprocess_env(self.env),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate((stdin or "").encode()), 60)
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    async def login(self, http: aiohttp.ClientSession, email: str, password: str) -> int:
        # registration "invite": the app's own rules, not the tests' open default
        running = await start_app(make_settings(self.data_dir, registration=None, **self.overrides))
        try:
            async with http.post(f"{running.url}/api/auth/login",
                                 json={"email": email, "password": password}) as resp:
                return resp.status
        finally:
            await running.stop()


@pytest.fixture
def store(backend: Backend, tmp_path: Path) -> Store:
    env = {"DATA_DIR": str(tmp_path), "AUTH_SECRET_KEY": SECRET, "BCRYPT_ROUNDS": "4", "LOCAL_MODEL": "false"}
    return Store(tmp_path, env | backend.env(), backend.settings())


def _password(out: str) -> str:
    lines = [line for line in out.splitlines() if line.startswith("password: ")]
    assert len(lines) == 1, out
    return lines[0].removeprefix("password: ")


async def test_create_admin_with_a_generated_password_then_sign_in(
    store: Store, http: aiohttp.ClientSession
) -> None:
    code, out, _ = await store.gust("users", "create", "Boss@Example.com", "--admin")
    assert code == 0
    assert "created admin boss@example.com" in out
    password = _password(out)
    assert len(password) >= 16
    assert await store.login(http, "boss@example.com", password) == 200

    # A password from stdin is used as given and never printed.
    code, out, _ = await store.gust("users", "create", "ann@example.com", stdin="ann's password 1\n")
    assert code == 0, out
    assert "created user ann@example.com" in out and "password" not in out
    code, out, _ = await store.gust("users", "list")
    assert code == 0
    rows = [line.split("\t")[:3] for line in out.splitlines()[1:]]
    assert rows == [["boss@example.com", "admin", "active"], ["ann@example.com", "user", "active"]]
    assert await store.login(http, "ann@example.com", "ann's password 1") == 200


async def test_the_first_account_is_the_admin_even_without_the_flag(store: Store) -> None:
    code, out, _ = await store.gust("users", "create", "first@example.com", stdin="first password\n")
    assert code == 0
    assert "created admin first@example.com" in out


async def test_reset_password_and_disable(store: Store, http: aiohttp.ClientSession) -> None:
    assert (await store.gust("users", "create", "boss@example.com", stdin="old password 1\n"))[0] == 0
    assert (await store.gust("users", "create", "ann@example.com", stdin="ann password 1\n"))[0] == 0

    code, out, _ = await store.gust("users", "reset-password", "ann@example.com")
    assert code == 0
    new = _password(out)
    assert await store.login(http, "ann@example.com", "ann password 1") == 401
    assert await store.login(http, "ann@example.com", new) == 200

    code, out, _ = await store.gust("users", "disable", "ann@example.com")
    assert code == 0 and "disabled ann@example.com" in out
    assert await store.login(http, "ann@example.com", new) == 401
    code, out, _ = await store.gust("users", "list")
    assert "ann@example.com\tuser\tdisabled" in out
    assert (await store.gust("users", "enable", "ann@example.com"))[0] == 0
    assert await store.login(http, "ann@example.com", new) == 200


async def test_bad_input_is_refused_with_a_reason(store: Store) -> None:
    code, _, err = await store.gust("users", "create", "not-an-address", stdin="long enough 1\n")
    assert code == 1 and "email" in err
    code, _, err = await store.gust("users", "create", "a@example.com", stdin="short\n")
    assert code == 1 and "at least 8 characters" in err
    assert (await store.gust("users", "create", "a@example.com", stdin="long enough 1\n"))[0] == 0
    code, _, err = await store.gust("users", "create", "A@example.com", stdin="long enough 1\n")
    assert code == 1 and "gust users:" in err
    code, _, err = await store.gust("users", "reset-password", "nobody@example.com")
    assert code == 1 and "no account" in err
    code, _, err = await store.gust("users", "disable", "nobody@example.com")
    assert code == 1 and "no account" in err
    # The only admin cannot be disabled: the instance would have nobody to run it.
    code, _, err = await store.gust("users", "disable", "a@example.com")
    assert code == 1 and "admin" in err
    code, _, err = await store.gust("users", "frobnicate")
    assert code == 2
    code, _, err = await store.gust("users", "create")
    assert code == 2
