"""Share links in the browser: the owner shares from the chat view, an anonymous browser reads it."""

from __future__ import annotations

import re

from playwright.async_api import Browser, expect

from tests.e2e.conftest import UI, new_ui
from tests.e2e.seed import seed_conversation, user_by_email


async def test_anonymous_browser_sees_the_snapshot_until_revoked(signed_in: UI, browser: Browser) -> None:
    owner = signed_in
    user = await user_by_email(owner.app.services, owner.email or "")
    chat, _ = await seed_conversation(
        owner.app.services, user, "Holiday ideas", [("Where to?", "Try **Lisbon** in May.")]
    )
    await owner.goto(f"/c/{chat.id}")
    await owner.page.get_by_role("button", name="Share", exact=True).click()
    dialog = owner.page.get_by_role("dialog", name="Share this chat")
    await dialog.get_by_role("button", name="Create link").click()
    link = dialog.get_by_label("Link")
    await expect(link).to_have_value(re.compile(r"/s/[A-Za-z0-9_-]{32,}$"))
    url = await link.input_value()
    share_path = url[url.index("/s/"):]

    anonymous = await new_ui(browser, owner.app)
    try:
        await anonymous.goto(share_path)
        page = anonymous.page
        await expect(page.get_by_role("heading", name="Holiday ideas")).to_be_visible()
        answer = page.locator("article.assistant .markdown")
        await expect(answer).to_have_text("Try Lisbon in May.")
        await expect(answer.locator("strong")).to_have_text("Lisbon")  # the markdown renderer
        await expect(page.locator("article.user .user-text")).to_have_text("Where to?")
        await expect(page.get_by_role("button", name="Regenerate")).to_have_count(0)
        await expect(page.get_by_label("Password")).to_have_count(0)  # no sign-in form
        await anonymous.screenshot("share-view")
        await owner.screenshot("share-dialog")

        await dialog.get_by_role("button", name="Stop sharing").click()
        await expect(dialog.get_by_role("button", name="Create link")).to_be_visible()
        await page.reload()
        await expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
        await expect(page.locator("article")).to_have_count(0)
        assert anonymous.watch.errors == [] and anonymous.watch.csp_violations() == []
    finally:
        await anonymous.context.close()
