"""How the server hands out the built UI: caching, CSP-compatible markup, SPA paths."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.env import IN_CI

DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist"


@pytest.fixture
def built_ui() -> Path:
    if not (DIST / "index.html").is_file():
        if IN_CI:
            pytest.fail("frontend/dist/index.html is missing: CI must build the UI (./setup_venvs.sh)")
        pytest.skip("frontend/dist/index.html is missing: build the UI with ./setup_venvs.sh")
    return DIST


async def test_index_is_never_cached_and_has_no_inline_script(
    built_ui: Path, app: RunningApp, http: aiohttp.ClientSession
) -> None:
    for path in ("/", "/c/some-chat-id", "/c/some-chat-id?m=msg"):
        async with http.get(app.url + path) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/html")
            assert resp.headers["Cache-Control"] == "no-cache"
            assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
            html = await resp.text()
        assert html == (built_ui / "index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all('src="/assets/' in tag for tag in scripts), scripts  # no inline script


async def test_hashed_assets_are_cached_for_a_year(
    built_ui: Path, app: RunningApp, http: aiohttp.ClientSession
) -> None:
    html = (built_ui / "index.html").read_text()
    referenced = re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)
    assert any(p.endswith(".js") for p in referenced) and any(p.endswith(".css") for p in referenced)
    for path in referenced:
        async with http.get(app.url + path) as resp:
            assert resp.status == 200, path
            assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            body = await resp.read()
        assert body == (built_ui / path.lstrip("/")).read_bytes()
        if path.endswith(".js"):
            assert "javascript" in resp.headers["Content-Type"]
    async with http.get(app.url + "/assets/not-there-123.js") as resp:
        assert resp.status == 404


async def test_without_a_build_the_root_page_says_how_to_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    monkeypatch.setattr("gust.app.FRONTEND_DIST", tmp_path / "no-dist")
    (tmp_path / "data").mkdir()
    running = await start_app(make_settings(tmp_path / "data"))
    try:
        async with http.get(running.url + "/") as resp:
            assert resp.status == 200
            assert resp.headers["Cache-Control"] == "no-cache"
            text = await resp.text()
        assert "./setup_venvs.sh" in text
        async with http.get(running.url + "/health") as resp:
            assert resp.status == 200  # the API works without the UI
    finally:
        await running.stop()
