"""Settings (theme, default model, API keys) and the admin pages (users, agents)."""

from __future__ import annotations

import aiohttp
from playwright.async_api import expect

from tests.e2e.conftest import PASSWORD, UI
from tests.support.client import Api
from tests.support.openapi_check import OpenAPIChecker


async def test_settings_theme_and_api_keys(signed_in: UI) -> None:
    ui = signed_in
    page = ui.page
    await ui.goto("/")
    await page.get_by_role("button", name="Settings").click()
    dialog = page.get_by_role("dialog", name="Settings")
    await expect(dialog).to_be_visible()

    await dialog.get_by_label("Dark").check()
    assert await page.evaluate("document.documentElement.dataset.theme") == "dark"
    await dialog.get_by_label("Default model for new chats").select_option("fake-model")

    await dialog.get_by_label("Key name").fill("laptop")
    await dialog.get_by_role("button", name="Create key").click()
    notice = dialog.get_by_role("status")
    await expect(notice).to_contain_text("Copy this key now")
    key = (await notice.locator("code").text_content() or "").strip()
    assert key
    await expect(dialog.get_by_text("laptop")).to_be_visible()
    assert await ui.axe("settings") == []
    await ui.screenshot("settings-dark")

    # The key works as a bearer token against the API.
    assert ui.api is not None
    me = await ui.api.as_user(key).get("/api/auth/me")
    assert me.status == 200 and me.json["email"] == ui.email

    await dialog.get_by_role("button", name="Revoke").click()
    await expect(dialog.get_by_text("No API keys yet.")).to_be_visible()
    assert (await ui.api.as_user(key).get("/api/auth/me")).status == 401

    # Preferences survive a reload.
    await page.reload()
    await expect(page.get_by_role("navigation", name="Chats")).to_be_visible()
    assert await page.evaluate("document.documentElement.dataset.theme") == "dark"


async def test_admin_manages_users_and_agents(signed_in: UI, http: aiohttp.ClientSession) -> None:
    ui = signed_in  # the first account of a fresh server is its admin
    page = ui.page
    other = Api(ui.url, http, OpenAPIChecker(ui.app.app.openapi))
    registered = await other.post(
        "/api/auth/register", {"email": "member@example.com", "password": PASSWORD}, auth=False
    )
    assert registered.status == 201
    await ui.goto("/")
    await page.get_by_role("button", name="Administration").click()
    dialog = page.get_by_role("dialog", name="Administration")
    row = dialog.get_by_role("row").filter(has_text="member@example.com")
    await expect(row).to_contain_text("Active")
    await row.get_by_role("button", name="Disable member@example.com").click()
    await expect(row).to_contain_text("Disabled")
    member = {"email": "member@example.com", "password": PASSWORD}
    login = await other.post("/api/auth/login", member, auth=False)
    assert login.status in (401, 403)
    assert await ui.axe("admin-users") == []

    await dialog.get_by_role("tab", name="Agents").click()
    await dialog.get_by_label("Agent name").fill("Helper")
    await dialog.get_by_label("Description").fill("Answers politely")
    await dialog.get_by_label("System prompt").fill("Be kind.")
    await dialog.get_by_role("button", name="Create agent").click()
    await expect(dialog.get_by_text("Helper")).to_be_visible()
    assert ui.api is not None
    agents = (await ui.api.get("/api/agents")).json["items"]
    assert [a["name"] for a in agents] == ["Helper"]
    await ui.screenshot("admin-agents")
    await dialog.get_by_role("button", name="Delete Helper").click()
    await expect(dialog.get_by_text("Helper")).to_have_count(0)
    assert (await ui.api.get("/api/agents")).json["items"] == []


async def test_members_do_not_see_administration(signed_in: UI, http: aiohttp.ClientSession) -> None:
    from tests.e2e.conftest import new_ui, sign_in

    ui = signed_in
    assert ui.page.context.browser is not None
    member = await new_ui(ui.page.context.browser, ui.app)
    try:
        await sign_in(member, http, "second@example.com")
        await member.goto("/")
        await expect(member.page.get_by_role("navigation", name="Chats")).to_be_visible()
        await expect(member.page.get_by_role("button", name="Administration")).to_have_count(0)
    finally:
        await member.context.close()
