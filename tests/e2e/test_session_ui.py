"""An expired access token is renewed through /api/auth/refresh without the reader noticing."""

from __future__ import annotations

import asyncio
import contextlib

from playwright.async_api import Request, Response, Route, expect

from tests.e2e.conftest import UI
from tests.e2e.seed import seed_conversation, user_by_email
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.wait import until


async def drop_access_cookie(ui: UI) -> None:
    """What the browser does when the access cookie's Max-Age (= the token's life) ends."""
    await ui.context.clear_cookies(name="gust_access")


async def expire_access_cookie(ui: UI) -> None:
    """Keep the cookie but make its token expired (a browser clock behind the server's)."""
    user = await user_by_email(ui.app.services, ui.email or "")
    tokens = ui.app.services.auth.tokens
    ttl = tokens.access_ttl
    tokens.access_ttl = -60
    try:
        stale = tokens.issue_access_token(user)
    finally:
        tokens.access_ttl = ttl
    await ui.context.add_cookies([{"name": "gust_access", "value": stale, "url": ui.url}])


def count_refreshes(ui: UI) -> list[int]:
    """Statuses of /api/auth/refresh answers, in every tab of the browser context."""
    statuses: list[int] = []

    def seen(response: Response) -> None:
        if response.url.endswith("/api/auth/refresh"):
            statuses.append(response.status)

    ui.context.on("response", seen)
    return statuses


async def seen_by_now(statuses: list[int], count: int, timeout: float = 5.0) -> list[int]:
    """`statuses` once `count` answers arrived (or `timeout` passed).

    Playwright delivers response events on its own schedule: the page can already show what
    a renewed session fetched before the refresh's event reaches the listener.
    """
    await until(lambda: len(statuses) >= count, timeout=timeout, interval=0.05)
    return statuses


async def test_session_is_renewed_for_reads_streams_and_page_loads(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    chat, _ = await seed_conversation(ui.app.services, user, "Old chat", [("old question", "old answer")])
    await ui.goto("/")
    await expect(ui.page.get_by_role("link", name="Old chat")).to_be_visible()
    refreshes = count_refreshes(ui)

    await drop_access_cookie(ui)
    await ui.page.get_by_role("link", name="Old chat").click()
    await expect(ui.page.locator("article.assistant .markdown")).to_have_text("old answer")
    assert await seen_by_now(refreshes, 1) == [200]

    await drop_access_cookie(ui)
    upstream.script = Script(tokens=["Still ", "signed ", "in."])
    composer = ui.page.get_by_label("Message", exact=True)
    await composer.fill("Are you there?")
    await composer.press("Enter")
    answer = ui.page.locator("article.assistant").last.locator(".markdown")
    await expect(answer).to_have_text("Still signed in.")
    assert await seen_by_now(refreshes, 2) == [200, 200]
    assert ui.page.url.endswith(f"/c/{chat.id}")

    # Coming back later: the page load itself renews the session.
    await drop_access_cookie(ui)
    await ui.page.reload()
    await expect(ui.page.get_by_role("link", name="Old chat")).to_be_visible()
    assert await seen_by_now(refreshes, 3) == [200, 200, 200]


async def test_session_is_renewed_while_an_expired_cookie_is_still_sent(signed_in: UI) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    await seed_conversation(ui.app.services, user, "Old chat", [("old question", "old answer")])
    await ui.goto("/")
    await expect(ui.page.get_by_role("link", name="Old chat")).to_be_visible()
    await expire_access_cookie(ui)
    await ui.page.get_by_role("link", name="Old chat").click()
    await expect(ui.page.locator("article.assistant .markdown")).to_have_text("old answer")


async def test_two_tabs_renewing_at_once_keep_the_session(signed_in: UI) -> None:
    """Tabs share cookies; a refresh token is single-use. Were both tabs to refresh with
    the same token, the server would take the second use for theft and end the session:
    the tabs take turns, and the one that waited finds the renewed cookies already work."""
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    await seed_conversation(ui.app.services, user, "Old chat", [("old question", "old answer")])
    other = await ui.context.new_page()
    await ui.goto("/")
    await other.goto(ui.url + "/")
    for page in (ui.page, other):
        await expect(page.get_by_role("link", name="Old chat")).to_be_visible()

    refreshes = count_refreshes(ui)
    sent: list[Request] = []
    second_sent = asyncio.Event()

    def on_request(request: Request) -> None:
        if request.url.endswith("/api/auth/refresh"):
            sent.append(request)
            if len(sent) == 2:
                second_sent.set()

    ui.context.on("request", on_request)

    async def hold_the_first(route: Route) -> None:
        # The first refresh is held before it reaches the server until another one is
        # sent, or 2 s: were a second tab to refresh meanwhile, both would carry the same
        # refresh token (the server has not rotated it yet).
        if sent and route.request is sent[0]:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(second_sent.wait(), 2)
        await route.continue_()

    await ui.context.route("**/api/auth/refresh", hold_the_first)
    await drop_access_cookie(ui)
    await asyncio.gather(ui.page.reload(), other.reload())
    for page in (ui.page, other):
        await expect(page.get_by_role("link", name="Old chat")).to_be_visible()
    assert await seen_by_now(refreshes, 2, timeout=1) == [200]

    # The session was not ended: the next renewal still works.
    await ui.context.unroute("**/api/auth/refresh")
    await drop_access_cookie(ui)
    await ui.page.reload()
    await expect(ui.page.get_by_role("link", name="Old chat")).to_be_visible()
    assert await seen_by_now(refreshes, 2) == [200, 200]
