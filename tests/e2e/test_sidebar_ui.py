"""The chat list: newest first, infinite scroll, rename, pin, archive, delete with undo."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import UI
from tests.e2e.seed import create_chat, user_by_email
from tests.support.wait import until


async def titles(ui: UI) -> list[str]:
    assert ui.api is not None
    resp = await ui.api.get("/api/chats?limit=200")
    return [c["title"] for c in resp.json["items"]]


async def test_sidebar_lists_newest_first_and_loads_more_on_scroll(signed_in: UI) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    for i in range(45):
        await create_chat(ui.app.services, user, f"Chat number {i:02d}")
    await ui.goto("/")
    rows = ui.page.locator("nav .chat-row")
    await expect(rows.first).to_have_text("Chat number 44")
    await expect(rows).to_have_count(40)
    await ui.page.get_by_role("button", name="Load more chats").scroll_into_view_if_needed()
    await expect(rows).to_have_count(45)
    await expect(rows.last).to_have_text("Chat number 00")


async def test_rename_pin_archive_and_delete_with_undo(signed_in: UI) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    for title in ("Alpha", "Beta", "Gamma"):
        await create_chat(ui.app.services, user, title)
    await ui.goto("/")
    nav = ui.page.get_by_role("navigation", name="Chats")
    await expect(nav.locator(".chat-row")).to_have_text(["Gamma", "Beta", "Alpha"])

    # Rename with the keyboard: menu, Rename, type, Enter.
    await nav.get_by_role("button", name="Actions for “Beta”").click()
    await nav.get_by_role("button", name="Rename").click()
    field = nav.get_by_label("New title")
    await expect(field).to_be_focused()
    await field.fill("Beta renamed")
    await field.press("Enter")
    await expect(nav.get_by_role("link", name="Beta renamed")).to_be_visible()
    assert await until(lambda: _has_title(ui, "Beta renamed"), timeout=15, interval=0.1)

    # Pin: the chat moves to the Pinned section.
    await nav.get_by_role("button", name="Actions for “Alpha”").click()
    await nav.get_by_role("button", name="Pin", exact=True).click()
    await expect(nav.get_by_role("heading", name="Pinned")).to_be_visible()
    await expect(nav.locator(".chat-row").first).to_contain_text("Alpha")

    # Archive: gone from the list, shown among archived chats.
    await nav.get_by_role("button", name="Actions for “Gamma”").click()
    await nav.get_by_role("button", name="Archive", exact=True).click()
    await expect(nav.get_by_role("link", name="Gamma")).to_have_count(0)
    await nav.get_by_role("button", name="Show archived chats").click()
    await expect(nav.get_by_role("link", name="Gamma")).to_be_visible()
    await nav.get_by_role("button", name="Back to chats").click()

    # Delete, undo, delete again: it is really deleted once the undo window closes.
    await ui.screenshot("sidebar-before-delete")
    await nav.get_by_role("button", name="Actions for “Beta renamed”").click()
    await nav.get_by_role("button", name="Delete", exact=True).click()
    await expect(nav.get_by_role("link", name="Beta renamed")).to_have_count(0)
    await ui.page.get_by_role("button", name="Undo").click()
    await expect(nav.get_by_role("link", name="Beta renamed")).to_be_visible()
    assert "Beta renamed" in await titles(ui)

    await nav.get_by_role("button", name="Actions for “Beta renamed”").click()
    await nav.get_by_role("button", name="Delete", exact=True).click()
    await expect(ui.page.get_by_text("Deleted “Beta renamed”.")).to_be_visible()
    assert await until(lambda: _lacks_title(ui, "Beta renamed"), timeout=15, interval=0.1)
    await ui.page.reload()
    await expect(nav.get_by_role("link", name="Alpha")).to_be_visible()
    await expect(nav.get_by_role("link", name="Beta renamed")).to_have_count(0)
    assert ui.watch.errors == []


async def _has_title(ui: UI, title: str) -> bool:
    return title in await titles(ui)


async def _lacks_title(ui: UI, title: str) -> bool:
    return title not in await titles(ui)


async def test_chat_menu_works_from_the_keyboard(signed_in: UI) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    await create_chat(ui.app.services, user, "Keyboard chat")
    await ui.goto("/")
    nav = ui.page.get_by_role("navigation", name="Chats")
    menu_button = nav.get_by_role("button", name="Actions for “Keyboard chat”")
    await menu_button.focus()
    await ui.page.keyboard.press("Enter")
    await expect(nav.get_by_role("button", name="Rename")).to_be_focused()
    await ui.page.keyboard.press("ArrowDown")
    await expect(nav.get_by_role("button", name="Pin", exact=True)).to_be_focused()
    await ui.page.keyboard.press("Escape")
    await expect(menu_button).to_be_focused()
    await expect(nav.get_by_role("button", name="Rename")).to_have_count(0)
    await ui.page.keyboard.press("Enter")
    await ui.page.keyboard.press("ArrowDown")
    await ui.page.keyboard.press("Enter")
    await expect(nav.get_by_role("heading", name="Pinned")).to_be_visible()
    # A click elsewhere closes an open menu.
    await nav.get_by_role("button", name="Actions for “Keyboard chat”").click()
    await expect(nav.get_by_role("button", name="Rename")).to_be_visible()
    await ui.page.get_by_role("heading", name="How can I help?").click()
    await expect(nav.get_by_role("button", name="Rename")).to_have_count(0)
