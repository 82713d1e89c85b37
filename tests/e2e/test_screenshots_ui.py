"""The screenshot set: every main screen, desktop (1280x800) and mobile (390x844), light and
dark, written to test-artifacts/screenshots/ (git-ignored) by the normal e2e run."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import ROOT, UI
from tests.e2e.screens import (
    SIZES,
    THEMES,
    Scenes,
    chat_ready,
    open_drawer_if_narrow,
    set_scenes,
    settle,
    show,
)
from tests.support.app_server import RunningApp
from tests.support.fake_upstream import FakeUpstream

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def screens(scenes: Scenes) -> dict[str, tuple[UI, Callable[[Page], Awaitable[None]]]]:
    """name -> (page it is shown on, how to get there from a fresh load)."""
    anon, user = scenes.anonymous, scenes.user
    chat = f"/c/{scenes.chat_id}"

    async def sign_in(page: Page) -> None:
        await anon.goto("/")
        await expect(page.get_by_label("Password")).to_be_visible()

    async def empty_chat(page: Page) -> None:
        await user.goto("/")
        await expect(page.get_by_label("Message", exact=True)).to_be_visible()

    async def chat_answer(page: Page) -> None:
        await user.goto(chat)
        await chat_ready(page)

    async def sidebar(page: Page) -> None:
        await user.goto(chat)
        await chat_ready(page)
        await open_drawer_if_narrow(page)
        await expect(page.get_by_role("link", name="Birthday cake ideas")).to_be_visible()

    async def search(page: Page) -> None:
        await user.goto(chat)
        await chat_ready(page)
        await page.keyboard.press("Control+k")
        await page.get_by_label("Search messages and chats").fill("quicksort")
        await expect(page.locator("a.hit").first).to_be_visible()

    async def settings(page: Page) -> None:
        await user.goto(chat)
        await open_drawer_if_narrow(page)
        await page.get_by_role("button", name="Settings", exact=True).click()
        await expect(page.get_by_role("dialog", name="Settings")).to_be_visible()

    async def usage(page: Page) -> None:
        await user.goto("/usage")
        await expect(page.get_by_role("heading", name="Usage", level=1)).to_be_visible()

    async def share(page: Page) -> None:
        await anon.goto(scenes.share_path)
        await expect(page.get_by_role("heading", name="Sorting algorithms")).to_be_visible()
        await chat_ready(page)

    async def admin(page: Page) -> None:
        await user.goto(chat)
        await open_drawer_if_narrow(page)
        await page.get_by_role("button", name="Administration").click()
        await expect(page.get_by_role("dialog", name="Administration")).to_be_visible()

    return {
        "sign-in": (anon, sign_in),
        "empty-chat": (user, empty_chat),
        "chat-answer": (user, chat_answer),
        "sidebar": (user, sidebar),
        "search": (user, search),
        "settings": (user, settings),
        "share": (anon, share),
        "admin": (user, admin),
        "usage": (user, usage),
    }


async def test_screenshot_set_of_the_main_screens(
    browser: Browser, ui_app: RunningApp, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    scenes = await set_scenes(browser, ui_app, upstream, http)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for name, (ui, visit) in screens(scenes).items():
            for size in SIZES:
                for theme in THEMES:
                    path = SCREENSHOTS / f"{name}-{size}-{theme}.png"
                    path.unlink(missing_ok=True)  # a stale file from an earlier run proves nothing
                    await show(ui.page, size, theme)
                    await visit(ui.page)
                    await settle(ui.page)
                    await ui.page.screenshot(path=str(path), full_page=False)
                    written.append(path)
    finally:
        await scenes.close()
    assert len(written) == 9 * len(SIZES) * len(THEMES)
    for path in written:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, path
