"""Settings (theme, default model, API keys) and the admin pages (users, agents)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from playwright.async_api import Browser, expect

from tests.e2e.conftest import PASSWORD, UI, new_ui, sign_in
from tests.support.app_server import make_settings, start_app
from tests.support.client import Api
from tests.support.openapi_check import OpenAPIChecker


async def test_settings_theme_and_api_keys(signed_in: UI) -> None:
    ui = signed_in
    page = ui.page
    await ui.goto("/")
    await page.get_by_role("button", name="Settings", exact=True).click()
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


async def test_invite_link_opens_registration_on_an_invite_only_server(
    browser: Browser, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    (tmp_path / "data").mkdir()
    running = await start_app(make_settings(tmp_path / "data", registration="invite"))
    admin = await new_ui(browser, running)
    guest = await new_ui(browser, running)
    try:
        await sign_in(admin, http, "boss@example.com")  # the first account needs no invite
        await admin.goto("/")
        await admin.page.get_by_role("button", name="Administration").click()
        dialog = admin.page.get_by_role("dialog", name="Administration")
        await dialog.get_by_label("Email (optional)").fill("newbie@example.com")
        await dialog.get_by_role("button", name="Create invite link").click()
        link = (await dialog.locator(".invite-url code").text_content() or "").strip()
        assert "/?invite=" in link

        await guest.goto("/")
        await expect(guest.page.get_by_role("heading", name="Sign in to Gust")).to_be_visible()
        await expect(guest.page.get_by_role("button", name="New here? Create an account")).to_have_count(0)
        await guest.page.goto(link)
        await expect(guest.page.get_by_role("heading", name="Create your Gust account")).to_be_visible()
        await guest.page.get_by_label("Email").fill("newbie@example.com")
        await guest.page.get_by_label("Password").fill(PASSWORD)
        await guest.page.get_by_role("button", name="Create account").click()
        await expect(guest.page.get_by_role("navigation", name="Chats")).to_be_visible()
        assert "invite" not in guest.page.url
    finally:
        await admin.context.close()
        await guest.context.close()
        await running.stop()
