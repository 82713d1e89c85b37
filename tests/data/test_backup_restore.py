"""`python -m gust backup DIR` / `restore DIR` as real processes against real data files."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp

from tests.data.test_export_import import indexed, me
from tests.data.world import search_hits, seed_chats, snapshot
from tests.support.app_server import make_settings, start_app, subprocess_env
from tests.support.client import Api
from tests.support.openapi_check import OpenAPIChecker

QUERIES = ("zebras", "quokka", "melanin")


async def gust(cwd: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """Run `python -m gust ARGS` with only the given settings; (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gust", *args, cwd=cwd, env=subprocess_env(env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_backup_then_restore_into_an_empty_data_dir_gives_the_same_chats_and_hits(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    # No AUTH_SECRET_KEY: the signing key lives in DATA_DIR and must come back with the data.
    source = await start_app(make_settings(tmp_path / "a", auth_secret_key=None))
    try:
        api = Api(source.url, http, OpenAPIChecker(source.app.openapi))
        alice = await api.register_and_login("alice@example.com")
        await seed_chats(source.services.store, await me(source, alice))
        await indexed(source)
        before = await snapshot(alice)
        hits = {q: await search_hits(alice, q) for q in QUERIES}
        assert all(hits.values()) and len(before) == 2
        # Online: the server is still running while the backup is taken.
        code, _, err = await gust(tmp_path, "backup", str(tmp_path / "backup"), DATA_DIR=str(tmp_path / "a"))
        assert code == 0, err
    finally:
        await source.stop()
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    assert manifest["format"] == "gust.backup"
    assert sorted(manifest["files"]) == ["gust.db", "search.db", "secret_key"]

    code, out, err = await gust(tmp_path, "restore", str(tmp_path / "backup"), DATA_DIR=str(tmp_path / "b"))
    assert code == 0, err
    assert "reindex" not in err

    restored = await start_app(make_settings(tmp_path / "b", auth_secret_key=None))
    try:
        api = Api(restored.url, http, OpenAPIChecker(restored.app.openapi))
        same_session = api.as_user(alice.token)  # the restored key accepts the old token
        assert await snapshot(same_session) == before
        assert {q: await search_hits(same_session, q) for q in QUERIES} == hits
    finally:
        await restored.stop()

    # A DATA_DIR that is in use is never overwritten without --force.
    code, _, err = await gust(tmp_path, "restore", str(tmp_path / "backup"), DATA_DIR=str(tmp_path / "b"))
    assert code != 0 and "not empty" in err
    code, _, err = await gust(tmp_path, "backup", str(tmp_path / "backup"), DATA_DIR=str(tmp_path / "a"))
    assert code != 0 and "not empty" in err


async def test_a_backup_without_search_index_tells_to_reindex(tmp_path: Path) -> None:
    data = tmp_path / "a"
    app = await start_app(make_settings(data))
    await app.stop()
    (data / "search.db").unlink()
    code, _, err = await gust(tmp_path, "backup", str(tmp_path / "backup"), DATA_DIR=str(data))
    assert code == 0, err
    code, _, err = await gust(tmp_path, "restore", str(tmp_path / "backup"), DATA_DIR=str(tmp_path / "b"))
    assert code == 0 and "python -m gust reindex --full" in err
    assert (tmp_path / "b" / "gust.db").exists() and not (tmp_path / "b" / "search.db").exists()


async def test_restore_refuses_a_damaged_backup_and_backup_refuses_mongodb(tmp_path: Path) -> None:
    data = tmp_path / "data dir #1?"  # characters that mean something in a SQLite URI
    app = await start_app(make_settings(data))
    await app.stop()
    code, _, err = await gust(tmp_path, "backup", str(tmp_path / "backup"), DATA_DIR=str(data))
    assert code == 0, err
    with (tmp_path / "backup" / "gust.db").open("ab") as handle:
        handle.write(b"tampered")
    code, _, err = await gust(tmp_path, "restore", str(tmp_path / "backup"), DATA_DIR=str(tmp_path / "b"))
    assert code != 0 and "does not match the manifest" in err
    assert not (tmp_path / "b").exists()

    code, out, err = await gust(tmp_path, "backup", str(tmp_path / "m"), DATA_DIR=str(data),
                                MONGODB_URI="mongodb://127.0.0.1:1/")
    assert code != 0 and "mongodump --uri" in err and "mongorestore" in err
    assert not (tmp_path / "m").exists()
