"""axe-core (WCAG 2.0/2.1 A and AA) finds nothing on the main screens, at 1280 and 390 px,
light and dark: sign-in, a chat with a streamed rich answer, share page, the chat list, search,
administration, settings and usage.

One browser and one app for the whole sweep; every violation of every view is collected, so a
failure lists them all (rule id, impact, target nodes) rather than the first one.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.screens import (
    Scenes,
    chat_ready,
    each_view,
    open_drawer_if_narrow,
    require_axe,
    set_scenes,
    show,
)
from tests.support.app_server import RunningApp
from tests.support.fake_upstream import FakeUpstream

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

RUN_AXE_JS = """
async (tags) => {
  const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
  return result.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary})),
  }));
}
"""


def last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1].strip() if lines else ""


# Every region that scrolls sideways in the answers must be in the tab order and, focused after
# keyboard use, drawn with a visible focus outline.
SCROLLERS_WITHOUT_KEYBOARD_JS = """
() => {
  const scrollers = [...document.querySelectorAll('article.assistant *')].filter(el => {
    const style = getComputedStyle(el);
    return ['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
  });
  const describe = el => el.tagName.toLowerCase() + '.' + [...el.classList].join('.');
  const unreachable = el => {
    if (el.tabIndex < 0) return true;
    el.focus();
    return !el.matches(':focus-visible') || getComputedStyle(el).outlineStyle === 'none';
  };
  return {scrollers: scrollers.map(describe), missing: scrollers.filter(unreachable).map(describe)};
}
"""


class Sweep:
    def __init__(self, axe_source: str) -> None:
        self.axe_source = axe_source
        self.found: list[str] = []
        self.checked: list[str] = []

    async def run(self, page: Page, name: str) -> None:
        # A script element with axe's text would be inline script, which the app's CSP blocks:
        # evaluate it through the DevTools protocol instead, which the CSP does not govern.
        if not await page.evaluate("typeof window.axe !== 'undefined'"):
            await page.evaluate(self.axe_source)
        violations: list[dict[str, Any]] = await page.evaluate(RUN_AXE_JS, WCAG_TAGS)
        self.checked.append(name)
        for v in violations:
            nodes = "; ".join(f"{n['target']} ({last_line(n['summary'])})" for n in v["nodes"][:6])
            self.found.append(f"{name}: {v['id']} [{v['impact']}] {v['help']} -> {nodes}")

    def report(self) -> str:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        text = "\n".join(self.found)
        (ARTIFACTS / "axe-sweep.txt").write_text(text or "no violations\n")
        return text


async def test_main_screens_have_no_wcag_violations(
    browser: Browser, ui_app: RunningApp, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    sweep = Sweep(require_axe())
    scenes: Scenes = await set_scenes(browser, ui_app, upstream, http)
    try:
        anon, user = scenes.anonymous.page, scenes.user.page

        async def sign_in_page() -> None:
            if anon.url.endswith("/") and await anon.get_by_label("Password").count():
                return
            await scenes.anonymous.goto("/")
            await expect(anon.get_by_label("Password")).to_be_visible()

        await each_view(anon, sign_in_page, lambda s, t: sweep.run(anon, f"sign-in {s} {t}"))

        async def share_page() -> None:
            if "/s/" not in anon.url:
                await scenes.anonymous.goto(scenes.share_path)
            await expect(anon.get_by_role("heading", name="Sorting algorithms")).to_be_visible()
            await chat_ready(anon)

        await each_view(anon, share_page, lambda s, t: sweep.run(anon, f"share {s} {t}"))

        async def chat_page() -> None:
            await expect(user.get_by_role("heading", name="Sorting algorithms")).to_be_visible()
            await chat_ready(user)

        await each_view(user, chat_page, lambda s, t: sweep.run(user, f"chat {s} {t}"))
        # At phone width the code, the table and the long formula scroll sideways: each is
        # reached with Tab and shows the focus ring there.
        await show(user, "mobile", "light")
        await user.keyboard.press("Shift")  # keyboard use: focus rings are drawn from now on
        scrollers = await user.evaluate(SCROLLERS_WITHOUT_KEYBOARD_JS)
        assert len(scrollers["scrollers"]) >= 3, scrollers  # code, table, formula
        for missing in scrollers["missing"]:
            sweep.found.append(f"chat mobile: scrolls sideways, no keyboard focus ring: {missing}")

        async def drawer_and_search() -> None:
            await scenes.user.goto(f"/c/{scenes.chat_id}")
            await chat_ready(user)
            await open_drawer_if_narrow(user)
            await expect(user.get_by_role("link", name="Birthday cake ideas")).to_be_visible()

        await each_view(user, drawer_and_search, lambda s, t: sweep.run(user, f"chat list {s} {t}"))

        async def search_dialog() -> None:
            await scenes.user.goto(f"/c/{scenes.chat_id}")
            await chat_ready(user)
            await user.keyboard.press("Control+k")
            await user.get_by_label("Search messages and chats").fill("quicksort")
            await expect(user.locator("a.hit").first).to_be_visible()

        await each_view(user, search_dialog, lambda s, t: sweep.run(user, f"search {s} {t}"))

        async def admin_dialog() -> None:
            await scenes.user.goto(f"/c/{scenes.chat_id}")
            await open_drawer_if_narrow(user)
            await user.get_by_role("button", name="Administration").click()
            await expect(user.get_by_role("dialog", name="Administration")).to_be_visible()

        await each_view(user, admin_dialog, lambda s, t: sweep.run(user, f"admin {s} {t}"))

        settings = user.get_by_role("dialog", name="Settings")

        async def settings_dialog() -> None:
            if await settings.is_visible():
                return
            await scenes.user.goto(f"/c/{scenes.chat_id}")
            await open_drawer_if_narrow(user)
            await user.get_by_role("button", name="Settings", exact=True).click()
            await expect(settings).to_be_visible()

        await each_view(user, settings_dialog, lambda s, t: sweep.run(user, f"settings {s} {t}"))

        async def usage_page() -> None:
            if not user.url.endswith("/usage"):
                await scenes.user.goto("/usage")
            await expect(user.get_by_role("heading", name="Usage", level=1)).to_be_visible()

        await each_view(user, usage_page, lambda s, t: sweep.run(user, f"usage {s} {t}"))
    finally:
        await scenes.close()
        report = sweep.report()
    assert len(sweep.checked) == 8 * 4
    assert report == "", f"axe found WCAG A/AA violations:\n{report}"
