"""Sign in and register in the browser; the sign-in screen's accessibility."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Browser, expect

from tests.e2e.conftest import PASSWORD, UI, new_ui
from tests.support.app_server import make_settings, start_app


async def test_register_then_sign_out_and_sign_in_again(ui: UI) -> None:
    await ui.goto("/")
    await expect(ui.page.get_by_role("heading", name="Sign in to Gust")).to_be_visible()
    await ui.page.get_by_role("button", name="New here? Create an account").click()
    await ui.page.get_by_label("Name (optional)").fill("Ada")
    await ui.page.get_by_label("Email").fill("ada@example.com")
    await ui.page.get_by_label("Password").fill(PASSWORD)
    await ui.page.get_by_role("button", name="Create account").click()

    await expect(ui.page.get_by_role("navigation", name="Chats")).to_be_visible()
    await expect(ui.page.get_by_text("Ada", exact=True)).to_be_visible()
    await expect(ui.page.get_by_label("Message", exact=True)).to_be_focused()
    await ui.screenshot("registered-empty-chat")

    await ui.page.get_by_role("button", name="Sign out").click()
    await expect(ui.page.get_by_role("heading", name="Sign in to Gust")).to_be_visible()
    # The session cookie is gone: a reload still shows the sign-in screen.
    await ui.page.reload()
    await expect(ui.page.get_by_role("heading", name="Sign in to Gust")).to_be_visible()

    await ui.page.get_by_label("Email").fill("ada@example.com")
    await ui.page.get_by_label("Password").fill("wrong password")
    await ui.page.get_by_role("button", name="Sign in").click()
    await expect(ui.page.get_by_role("alert")).to_be_visible()

    await ui.page.get_by_label("Password").fill(PASSWORD)
    await ui.page.get_by_role("button", name="Sign in").click()
    await expect(ui.page.get_by_role("navigation", name="Chats")).to_be_visible()
    assert ui.watch.errors == []
    assert ui.watch.csp_violations() == []


async def test_sign_in_screen_has_no_serious_accessibility_violations(ui: UI) -> None:
    await ui.goto("/")
    await expect(ui.page.get_by_role("heading", name="Sign in to Gust")).to_be_visible()
    assert await ui.axe("sign-in") == []
    await ui.page.get_by_role("button", name="New here? Create an account").click()
    assert await ui.axe("register") == []
    await ui.screenshot("sign-in")
    assert ui.watch.csp_violations() == []


async def test_sign_in_screen_fits_a_narrow_phone(ui: UI) -> None:
    await ui.page.set_viewport_size({"width": 360, "height": 740})
    await ui.goto("/")
    await expect(ui.page.get_by_role("button", name="Sign in")).to_be_visible()
    overflow = await ui.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    await ui.screenshot("sign-in-360")


async def test_configured_oauth_providers_get_buttons(browser: Browser, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    settings = make_settings(tmp_path / "data", github_client_id="gh-id", github_client_secret="gh-secret")
    running = await start_app(settings)
    page_ui = await new_ui(browser, running)
    try:
        await page_ui.goto("/")
        button = page_ui.page.get_by_role("link", name="Continue with GitHub")
        await expect(button).to_be_visible()
        assert await button.get_attribute("href") == "/api/auth/oauth/github/start"
        assert await page_ui.axe("sign-in-oauth") == []
    finally:
        await page_ui.context.close()
        await running.stop()
