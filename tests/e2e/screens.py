"""The main screens of the app, set up once per test and shown one after another.

Shared by the accessibility sweep (axe on every screen, width and theme) and the screenshot
set: both need the same scenes — a signed-out page, a chat holding a streamed answer with
code, a table, maths, a link and sources, a share link, the settings dialog, the usage page.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.conftest import AXE, ROOT, UI, new_ui, sign_in
from tests.e2e.seed import add_message, create_chat, seed_conversation, user_by_email
from tests.support.app_server import RunningApp
from tests.support.env import IN_CI
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.wait import until

SIZES = {"desktop": (1280, 800), "mobile": (390, 844)}
THEMES = ("light", "dark")

QUESTION = "Compare the sorting algorithms, with code and the maths"
# Streamed token by token: a code block wider than the column (it scrolls sideways), a
# table, inline and display maths, a link; the earlier answer in the chat carries sources.
RICH_ANSWER = [
    "Here is **quicksort** in Python:\n\n",
    "```python\n",
    "def quicksort(items: list[int]) -> list[int]:  # a deliberately long comment that makes "
    "this line wider than any chat column so the block scrolls sideways\n",
    "    if len(items) < 2:\n        return items\n",
    "    pivot, *rest = items\n",
    "    return quicksort([x for x in rest if x < pivot]) + [pivot] + "
    "quicksort([x for x in rest if x >= pivot])\n",
    "```\n\n",
    "| algorithm | average | worst | memory | stable | in CPython's standard library |\n",
    "|---|---|---|---|---|---|\n",
    "| quicksort | $O(n \\log n)$ | $O(n^2)$ | $O(\\log n)$ | no | no |\n",
    "| merge sort | $O(n \\log n)$ | $O(n \\log n)$ | $O(n)$ | yes | as part of Timsort |\n\n",
    "The expected comparisons satisfy\n\n$$C(n) = 2(n+1)H_n - 4n \\approx 1.39\\, n \\log_2 n$$\n\n",
    "and, wider than a phone,\n\n",
    "$$\\sum_{k=1}^{n} \\frac{1}{k(k+1)(k+2)} = \\frac{1}{4} - \\frac{1}{2(n+1)(n+2)}",
    " \\quad \\text{for every natural number } n \\ge 1$$\n\n",
    "See [the Wikipedia article](https://en.wikipedia.org/wiki/Quicksort) for more.",
]
SOURCES = [
    {"n": 1, "url": "https://en.wikipedia.org/wiki/Sorting_algorithm", "title": "Sorting algorithm"},
    {"n": 2, "url": "https://docs.python.org/3/howto/sorting.html", "title": "Sorting HOW TO"},
]


@dataclass
class Scenes:
    """The pages the screens are shown on, and what the chat and share page are."""

    anonymous: UI
    user: UI
    chat_id: str
    share_path: str

    async def close(self) -> None:
        await self.anonymous.context.close()
        await self.user.context.close()


async def set_scenes(
    browser: Browser, app: RunningApp, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> Scenes:
    """An admin with a few chats, one answered live with the rich answer, shared by link."""
    anonymous = await new_ui(browser, app)
    user = await sign_in(await new_ui(browser, app), http, "admin@example.com")
    account = await user_by_email(app.services, user.email or "")
    await seed_conversation(app.services, account, "Packing list", [("What to pack?", "Light clothes.")])
    await seed_conversation(app.services, account, "Birthday cake ideas", [("A cake?", "Lemon drizzle.")])
    # The first answer carries web sources, as a research answer does.
    chat = await create_chat(app.services, account, "Sorting algorithms")
    question = await add_message(app.services, account, chat, "user", "Which sorts exist?", None)
    await add_message(
        app.services, account, chat, "assistant", "Quicksort and merge sort are the usual ones [1][2].",
        question.id, sources=SOURCES,
    )
    # With reasoning (a collapsible part) and cut at the length limit (the UI says so).
    upstream.script = Script(
        tokens=RICH_ANSWER, reasoning=["The user wants ", "a comparison."], finish_reason="length"
    )
    await user.goto(f"/c/{chat.id}")
    await expect(user.page.get_by_role("heading", name="Sorting algorithms")).to_be_visible()
    composer = user.page.get_by_label("Message", exact=True)
    await composer.fill(QUESTION)
    await composer.press("Enter")
    answer = user.page.locator("article.assistant").last
    await expect(answer).to_have_attribute("data-status", "complete")
    await chat_ready(user.page)
    await answer.locator("details.reasoning summary").click()  # shown open
    api = user.api
    assert api is not None

    async def indexed() -> bool:  # the indexer ships new messages in batches
        return bool((await api.get("/api/search?q=quicksort")).json["hits"])

    assert await until(indexed, timeout=20, interval=0.2), "the answer was never indexed"
    shared = await api.post(f"/api/chats/{chat.id}/share")
    assert shared.status == 201, shared.json
    return Scenes(anonymous, user, chat.id, shared.json["url"])


async def chat_ready(page: Page) -> None:
    """highlight.js and KaTeX load lazily: wait until the answer is rendered with them."""
    answer = page.locator("article.assistant").last
    await expect(answer.locator(".hljs-keyword").first).to_be_visible()
    await expect(answer.locator(".katex").first).to_be_visible()
    await expect(answer.locator("table")).to_be_visible()


async def settle(page: Page) -> None:
    """Two animation frames: layout and styles after a resize or theme change are applied."""
    await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


async def show(page: Page, size: str, theme: str) -> None:
    width, height = SIZES[size]
    await page.set_viewport_size({"width": width, "height": height})
    await page.emulate_media(color_scheme=theme, reduced_motion="reduce")  # type: ignore[arg-type]
    await settle(page)


Visit = Callable[[], Awaitable[None]]


async def each_view(page: Page, visit: Visit, check: Callable[[str, str], Awaitable[None]]) -> None:
    """Calls `check(size, theme)` for every size and theme, the screen shown by `visit`."""
    for size in SIZES:
        for theme in THEMES:
            await show(page, size, theme)
            await visit()
            await settle(page)
            await check(size, theme)


async def open_drawer_if_narrow(page: Page) -> None:
    """At phone width the chat list is a drawer behind the header's menu button."""
    viewport = page.viewport_size
    if viewport is not None and viewport["width"] < 700:
        await page.get_by_role("button", name="Open the chat list").click()
        await expect(page.get_by_role("navigation", name="Chats")).to_be_visible()


def require_axe() -> str:
    if not AXE.is_file():
        message = f"{AXE.relative_to(ROOT)} is missing: run npm ci in frontend/"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return AXE.read_text()
