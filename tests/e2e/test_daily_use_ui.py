"""Issue 19's "Broken" items in the browser: unknown chats, the API reference, cut answers,
live titles, a server that goes away and comes back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Request, Route, expect

from tests.e2e.conftest import UI, new_ui, sign_in, start_ui_app
from tests.e2e.seed import add_message, create_chat, user_by_email
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.wait import until

NOT_FOUND = "This chat does not exist or was deleted."


def _requests_to(ui: UI, path: str) -> list[str]:
    seen: list[str] = []

    def record(request: Request) -> None:
        if request.url.split("?")[0].endswith(path):
            seen.append(request.url)

    ui.page.on("request", record)
    return seen


async def test_unknown_chat_shows_not_found_and_stops_asking(signed_in: UI) -> None:
    ui = signed_in
    seen = _requests_to(ui, "/api/chats/nochat000000")
    await ui.goto("/c/nochat000000")
    await expect(ui.page.get_by_text(NOT_FOUND)).to_be_visible()
    # Observe a quiet second: a loop would have sent hundreds of requests by now.
    await ui.page.wait_for_timeout(1000)
    assert 1 <= len(seen) <= 2, len(seen)


async def test_back_to_a_deleted_chat_shows_not_found_and_stops_asking(signed_in: UI) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    chat = await create_chat(ui.app.services, user, "Soon gone")
    await add_message(ui.app.services, user, chat, "user", "hello", None)
    await ui.goto(f"/c/{chat.id}")
    await expect(ui.page.get_by_role("heading", name="Soon gone")).to_be_visible()
    await ui.page.get_by_role("button", name="New chat").first.click()
    await expect(ui.page).to_have_url(ui.url + "/")
    assert ui.api is not None
    assert (await ui.api.delete(f"/api/chats/{chat.id}")).status == 204
    seen = _requests_to(ui, f"/api/chats/{chat.id}")
    await ui.page.go_back()
    await expect(ui.page.get_by_text(NOT_FOUND)).to_be_visible()
    await ui.page.wait_for_timeout(1000)
    assert 1 <= len(seen) <= 2, len(seen)


async def test_api_reference_shows_the_operations(ui: UI) -> None:
    await ui.goto("/api/docs")
    await expect(ui.page.locator(".opblock").first).to_be_visible()
    await expect(ui.page.get_by_text("/api/chats/{chat_id}", exact=True).first).to_be_visible()
    assert await ui.page.locator(".opblock").count() > 20
    assert ui.watch.csp_violations() == []
    assert ui.watch.errors == []


async def test_an_answer_cut_at_the_length_limit_says_so_and_after_a_reload(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    upstream.script = Script(tokens=["A long answer that", " goes on and"], finish_reason="length")
    await ui.goto("/")
    composer = ui.page.get_by_label("Message", exact=True)
    await composer.fill("Tell me everything")
    await composer.press("Enter")
    notice = ui.page.get_by_test_id("cut-notice")
    await expect(notice).to_have_text("The answer was cut at the length limit.")
    await ui.page.reload()
    await expect(ui.page.get_by_text("A long answer that goes on and")).to_be_visible()
    await expect(notice).to_be_visible()
    assert ui.api is not None
    chat_id = ui.page.url.rsplit("/", 1)[1]
    detail = (await ui.api.get(f"/api/chats/{chat_id}")).json
    assert [m["finish_reason"] for m in detail["messages"]] == [None, "length"]


@pytest.fixture
async def titled(browser: Browser, upstream: FakeUpstream, tmp_path: Path,
                 http: aiohttp.ClientSession) -> AsyncIterator[UI]:
    app = await start_ui_app(upstream, tmp_path, generate_titles=True)
    page_ui = await new_ui(browser, app)
    try:
        yield await sign_in(page_ui, http, "titles@example.com")
    finally:
        await page_ui.context.close()
        await app.stop()


async def test_the_sidebar_gets_the_title_live_without_polling(titled: UI, upstream: FakeUpstream) -> None:
    ui = titled
    lists = _requests_to(ui, "/api/chats")
    feeds = _requests_to(ui, "/api/events")
    upstream.script = Script(tokens=["Museums", " and", " food."], plain_text="Paris in spring")
    await ui.goto("/")
    assert await until(lambda: len(feeds) > 0, timeout=15), "no /api/events request"
    composer = ui.page.get_by_label("Message", exact=True)
    await composer.fill("Plan three days in Paris for me")
    await composer.press("Enter")
    nav = ui.page.get_by_role("navigation", name="Chats")
    await expect(nav.get_by_role("link", name="Paris in spring")).to_be_visible()
    await expect(ui.page.get_by_role("heading", name="Paris in spring", level=1)).to_be_visible()
    settled, streams = len(lists), len(feeds)
    # No polling: nothing asks for the list again while the page sits there, and the
    # notification stream stays open (no reconnects).
    await ui.page.wait_for_timeout(3500)
    assert len(lists) == settled
    assert len(feeds) == streams


async def test_server_down_keeps_the_message_and_retry_sends_it_when_back(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    upstream.script = Script(tokens=["Here", " you", " are."])
    await ui.goto("/")
    await expect(ui.page.get_by_role("navigation", name="Chats")).to_be_visible()

    async def refuse(route: Route) -> None:
        await route.abort("connectionrefused")

    # The server goes away: every request fails before reaching it.
    for pattern in ("**/chat/**", "**/api/**", "**/health"):
        await ui.page.route(pattern, refuse)
    composer = ui.page.get_by_label("Message", exact=True)
    await composer.fill("Are you there?")
    await composer.press("Enter")
    await expect(ui.page.get_by_text("Could not reach the server. Your message is kept")).to_be_visible()
    await expect(ui.page.get_by_text("The server cannot be reached. Checking again…")).to_be_visible()
    await expect(ui.page.get_by_text("Are you there?")).to_be_visible()  # the message is kept
    await expect(ui.page.get_by_text("Streaming is unavailable")).to_have_count(0)
    await expect(ui.page.get_by_text("Failed to fetch")).to_have_count(0)

    # It comes back: the banner goes by itself (the page asks /health), Retry sends the message.
    await ui.page.unroute_all()
    await expect(ui.page.get_by_text("The server cannot be reached. Checking again…")).to_have_count(0)
    await ui.page.get_by_role("button", name="Retry").click()
    await expect(ui.page.get_by_text("Here you are.")).to_be_visible()
    assert ui.api is not None
    chats = (await ui.api.get("/api/chats")).json["items"]
    assert len(chats) == 1
    detail = (await ui.api.get(f"/api/chats/{chats[0]['id']}")).json
    assert [m["content"] for m in detail["messages"]] == ["Are you there?", "Here you are."]
