"""Daily use (issue 19): profile and defaults, password change, export all and import with a
result count, and the usage page (charts per day and model; per member for admins)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.e2e.conftest import PASSWORD, UI, new_ui, sign_in, start_ui_app
from tests.e2e.test_streaming_ui import last_answer, send
from tests.support.app_server import RunningApp
from tests.support.client import Api
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.openapi_check import OpenAPIChecker

IMPORT_LABEL = "Import chats (Gust export or ChatGPT conversations.json)"


@pytest.fixture
async def two_model_app(upstream: FakeUpstream, tmp_path: Path) -> AsyncIterator[RunningApp]:
    (tmp_path / "models").mkdir()
    running = await start_ui_app(upstream, tmp_path, models_file=upstream.models_file(
        tmp_path / "models", ["fake-a", "fake-b"], price_input_per_million=1.0, price_output_per_million=2.0))
    yield running
    await running.stop()


@pytest.fixture
async def profile_ui(browser: Browser, two_model_app: RunningApp, http: aiohttp.ClientSession
                     ) -> AsyncIterator[UI]:
    page_ui = await new_ui(browser, two_model_app)
    yield await sign_in(page_ui, http, "owner@example.com")
    await page_ui.context.close()


async def test_profile_defaults_apply_to_new_chats_and_password_changes(
    profile_ui: UI, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    ui = profile_ui
    page = ui.page
    upstream.script = Script(tokens=["Bonjour"])
    await ui.goto("/")
    await page.get_by_role("button", name="Settings", exact=True).click()
    dialog = page.get_by_role("dialog", name="Settings")
    await expect(dialog.get_by_label("Display name")).to_have_value("owner")
    await dialog.get_by_label("Display name").fill("Ada Lovelace")
    await dialog.get_by_label("Default model for new chats").select_option("fake-b")
    await dialog.get_by_label("Default system prompt for new chats").fill("Answer in French.")
    await dialog.get_by_role("button", name="Save profile").click()
    await expect(dialog.get_by_text("Profile saved.")).to_be_visible()
    assert await ui.axe("settings-profile") == []
    await ui.screenshot("settings-profile")
    await dialog.get_by_role("button", name="Close").click()
    await expect(page.get_by_role("navigation", name="Chats")).to_contain_text("Ada Lovelace")

    # A new chat: the header shows the default model, the server uses both defaults.
    await expect(page.get_by_label("Model", exact=True)).to_have_value("fake-b")
    await send(page, "Hello")
    await expect(last_answer(page)).to_have_attribute("data-status", "complete")
    assert upstream.requests[-1]["model"] == "fake-b"
    assert upstream.requests[-1]["messages"][0] == {"role": "system", "content": "Answer in French."}

    # Reopened, the settings show what was saved.
    await page.reload()
    await page.get_by_role("button", name="Settings", exact=True).click()
    await expect(dialog.get_by_label("Default model for new chats")).to_have_value("fake-b")
    prompt = dialog.get_by_label("Default system prompt for new chats")
    await expect(prompt).to_have_value("Answer in French.")

    # Password change from settings: the new password signs in, the old one no longer does.
    await dialog.get_by_label("Current password").fill(PASSWORD)
    await dialog.get_by_label("New password").fill("a much newer pass 2")
    await dialog.get_by_role("button", name="Change password").click()
    await expect(dialog.get_by_text("Password changed.")).to_be_visible()
    api = Api(ui.url, http, OpenAPIChecker(ui.app.app.openapi))
    old = await api.post("/api/auth/login", {"email": ui.email, "password": PASSWORD}, auth=False)
    new = await api.post("/api/auth/login", {"email": ui.email, "password": "a much newer pass 2"},
                         auth=False)
    assert old.status == 401 and new.status == 200
    assert ui.watch.errors == []


async def test_export_all_then_import_shows_progress_and_count(
    profile_ui: UI, upstream: FakeUpstream, tmp_path: Path
) -> None:
    ui = profile_ui
    page = ui.page
    upstream.script = Script(tokens=["An ", "answer"])
    await ui.goto("/")
    for text in ("First chat", "Second chat"):
        await page.get_by_role("button", name="New chat").first.click()
        await send(page, text)
        await expect(last_answer(page)).to_have_attribute("data-status", "complete")
    await page.get_by_role("button", name="Settings", exact=True).click()
    dialog = page.get_by_role("dialog", name="Settings")
    async with page.expect_download() as info:
        await dialog.get_by_role("link", name="Export all chats (ZIP)").click()
    download = await info.value
    archive = tmp_path / "export.zip"
    await download.save_as(archive)
    assert archive.read_bytes()[:2] == b"PK"

    # Progress is reported from the upload's events while it runs.
    await page.evaluate("""() => { window.__progress = [];
        const seen = (e) => window.__progress.push(e.loaded);
        const open = XMLHttpRequest.prototype.open;
        XMLHttpRequest.prototype.open = function (...args) {
          this.upload.addEventListener('progress', seen); return open.apply(this, args); }; }""")
    await dialog.get_by_label(IMPORT_LABEL).set_input_files(archive)
    await expect(dialog.get_by_test_id("import-result")).to_have_text("Imported 2 chats.")
    assert await page.evaluate("window.__progress.length") >= 1
    assert ui.api is not None
    chats = (await ui.api.get("/api/chats?limit=50")).json["items"]
    assert len(chats) == 4
    # The sidebar lists the imported chats too.
    await dialog.get_by_role("button", name="Close").click()
    await expect(page.get_by_role("navigation", name="Chats").locator('a[href^="/c/"]')).to_have_count(4)

    # A broken file: the server's message, no count.
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    await page.get_by_role("button", name="Settings", exact=True).click()
    await dialog.get_by_label(IMPORT_LABEL).set_input_files(bad)
    await expect(page.get_by_role("status").filter(has_text="JSON")).to_be_visible()
    await expect(dialog.get_by_test_id("import-result")).to_have_text("")


async def test_usage_page_charts_per_day_and_model_and_team_for_admins(
    profile_ui: UI, upstream: FakeUpstream, browser: Browser, http: aiohttp.ClientSession
) -> None:
    ui = profile_ui  # the first account: admin
    page = ui.page
    upstream.script = Script(tokens=["one ", "two"])
    await ui.goto("/")
    await send(page, "Question one")
    await expect(last_answer(page)).to_have_attribute("data-status", "complete")
    await page.get_by_label("Model", exact=True).select_option("fake-b")
    await send(page, "Question two")
    await expect(last_answer(page)).to_have_attribute("data-status", "complete")
    member = await sign_in(await new_ui(browser, ui.app), http, "member@example.com")
    assert member.api is not None
    await member.api.post("/chat/message", {"message": "member asks", "model": "fake-a"})

    await page.get_by_role("link", name="Usage").click()
    await expect(page).to_have_url(ui.url + "/usage")
    await expect(page.get_by_role("heading", name="Usage", level=1)).to_be_visible()
    chart = page.get_by_role("img", name="Tokens per day")
    await expect(chart.locator("rect")).to_have_count(2)  # today: fake-a and fake-b stacked
    cost_bars = page.get_by_role("img", name="Cost per day").locator("rect")
    await expect(cost_bars).to_have_count(2)
    # The tallest day fills the chart, even when it cost a fraction of a cent.
    heights = await cost_bars.evaluate_all("rs => rs.map(r => Number(r.getAttribute('height')))")
    assert sum(heights) > 100, heights
    models = page.get_by_test_id("usage-models")
    await expect(models.get_by_role("row")).to_have_count(4)  # head, fake-a, fake-b, total
    await expect(models.get_by_role("row", name="Total")).to_contain_text("2")
    assert await ui.axe("usage") == []
    await ui.screenshot("usage")

    await page.get_by_label("Team").check()
    users = page.get_by_test_id("usage-users")
    await expect(users.get_by_role("row")).to_have_count(3)
    await expect(users).to_contain_text("member@example.com")
    await expect(models.get_by_role("row", name="Total")).to_contain_text("3")

    # The member sees their own usage and no team switch.
    await member.goto("/usage")
    await expect(member.page.get_by_test_id("usage-models").get_by_role("row", name="fake-a")).to_be_visible()
    await expect(member.page.get_by_label("Team")).to_have_count(0)
    await member.page.set_viewport_size({"width": 390, "height": 800})
    assert await member.axe("usage-mobile") == []
    await member.context.close()
