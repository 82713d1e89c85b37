"""Browser tests: the real app (with a fake OpenAI upstream) driven by Debian's Chromium.

Chromium is the plugin's `browser` fixture (TEST_CHROMIUM; never `playwright install`).
The app serves frontend/dist, so the UI must be built first (./setup_venvs.sh): without
it these tests skip locally and fail in CI.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page

from tests.support.app_server import RunningApp, make_settings, start_app
from tests.support.client import Api
from tests.support.env import IN_CI
from tests.support.fake_upstream import FakeUpstream
from tests.support.openapi_check import OpenAPIChecker

ROOT = Path(__file__).resolve().parents[2]
DIST_INDEX = ROOT / "frontend" / "dist" / "index.html"
AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
PASSWORD = "correct horse 1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a browser test (`-m "not e2e"` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def _require_built_ui() -> None:
    if DIST_INDEX.is_file():
        return
    message = f"{DIST_INDEX.relative_to(ROOT)} is missing: build the UI with ./setup_venvs.sh"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


async def start_ui_app(upstream: FakeUpstream, directory: Path, **overrides: Any) -> RunningApp:
    """The real app on an ephemeral port, answering with the fake upstream's model."""
    _require_built_ui()
    data = directory / "data"
    data.mkdir(exist_ok=True)
    values: dict[str, Any] = {
        "models_file": upstream.models_file(directory),
        "checkpoint_interval": 0.05,
        "upstream_first_token_timeout": 10.0,
        "upstream_idle_timeout": 10.0,
        **overrides,
    }
    return await start_app(make_settings(data, **values))


@pytest.fixture
async def ui_app(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[RunningApp]:
    running = await start_ui_app(upstream, tmp_path)
    yield running
    await running.stop()


@dataclass
class PageWatch:
    """What a page did that a test may assert on: dialogs, errors, CSP violations."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)

    async def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        # Dismissing keeps the page going; the test fails on the recorded dialog anyway.
        await dialog.dismiss()

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def csp_violations(self) -> list[str]:
        return [e for e in self.console_errors if "Content Security Policy" in e]


@dataclass
class UI:
    """A signed-in (or anonymous) browser page on the app, with helpers."""

    app: RunningApp
    context: BrowserContext
    page: Page
    watch: PageWatch
    api: Api | None = None
    email: str | None = None

    @property
    def url(self) -> str:
        return self.app.url

    async def goto(self, path: str = "/") -> None:
        await self.page.goto(self.url + path)

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=False)
        return path

    async def axe(self, name: str) -> list[dict[str, Any]]:
        """Run axe-core in the page; returns the serious or critical violations."""
        if not AXE.is_file():
            message = f"{AXE.relative_to(ROOT)} is missing: run npm ci in frontend/"
            if IN_CI:
                pytest.fail(message)
            pytest.skip(message)
        # Added as a script element's text would be inline script (blocked by the CSP):
        # evaluate it through the DevTools protocol instead, which the CSP does not govern.
        await self.page.evaluate(AXE.read_text())
        result = await self.page.evaluate(
            "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
            " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
            " nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)})); }"
        )
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(result, indent=2))
        return [v for v in result if v["impact"] in ("serious", "critical")]

    async def dom_elements(self, selector: str) -> int:
        count: int = await self.page.evaluate(
            "(sel) => { const root = document.querySelector(sel);"
            " return root ? root.getElementsByTagName('*').length + 1 : -1; }",
            selector,
        )
        return count


async def new_ui(browser: Browser, app: RunningApp, *, width: int = 1280, height: int = 800) -> UI:
    context = await browser.new_context(viewport={"width": width, "height": height}, base_url=app.url)
    page = await context.new_page()
    watch = PageWatch()
    page.on("dialog", watch.on_dialog)
    page.on("pageerror", lambda e: watch.errors.append(str(e)))
    page.on("console", watch.on_console)
    page.set_default_timeout(15_000)
    return UI(app, context, page, watch)


async def sign_in(ui: UI, http: aiohttp.ClientSession, email: str) -> UI:
    """Register through the API, then log in from the page so the browser holds every
    cookie the server sets on login (session, CSRF, refresh)."""
    api = Api(ui.url, http, OpenAPIChecker(ui.app.app.openapi))
    ui.api = await api.register_and_login(email, PASSWORD)
    ui.email = email
    await ui.goto("/")
    status = await ui.page.evaluate(
        """async ([email, password]) => (await fetch('/api/auth/login', {
             method: 'POST', headers: {'Content-Type': 'application/json'},
             body: JSON.stringify({email, password})})).status""",
        [email, PASSWORD],
    )
    assert status == 200
    return ui


@pytest.fixture
async def ui(browser: Browser, ui_app: RunningApp) -> AsyncIterator[UI]:
    """An anonymous page on the app."""
    page_ui = await new_ui(browser, ui_app)
    yield page_ui
    await page_ui.context.close()


@pytest.fixture
async def signed_in(ui: UI, http: aiohttp.ClientSession) -> UI:
    """A page whose browser holds a fresh user's session cookie."""
    return await sign_in(ui, http, "reader@example.com")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
