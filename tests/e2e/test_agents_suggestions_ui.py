"""Daily use (issue 19): an agent picked for a new chat answers with its name on the answer;
admin-set suggested prompts on an empty chat fill the composer; keyboard shortcuts."""

from __future__ import annotations

import io

from PIL import Image
from playwright.async_api import expect

from tests.e2e.conftest import UI
from tests.e2e.test_streaming_ui import composer, last_answer, send, wait_text_length, words
from tests.support.fake_upstream import FakeUpstream, Script


async def test_agent_picker_binds_the_new_chat_and_answers_show_the_agent(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in  # the first account: an admin, who may create agents
    page = ui.page
    assert ui.api is not None
    agent = await ui.api.post("/api/agents", {"name": "Pirate", "system_prompt": "Talk like a pirate."})
    assert agent.status == 201, agent.text
    png = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(png, format="PNG")
    avatar = await ui.api.request("PUT", f"/api/agents/{agent.json['id']}/avatar", data=png.getvalue(),
                                  headers={"Content-Type": "image/png"})
    assert avatar.status == 200, avatar.text
    upstream.script = Script(tokens=["Arr", " matey"])
    await ui.goto("/")
    picker = page.get_by_label("Agent", exact=True)
    await expect(picker).to_be_visible()
    await picker.select_option(label="Pirate")
    await send(page, "Hello there")
    await expect(last_answer(page)).to_have_attribute("data-status", "complete")
    badge = last_answer(page).get_by_test_id("agent-badge")
    await expect(badge.locator(".name")).to_have_text("Pirate")
    image = badge.get_by_role("img", name="Pirate’s avatar")
    await expect(image).to_be_visible()
    assert await image.evaluate("img => img.complete && img.naturalWidth > 0")
    assert upstream.requests[-1]["messages"][0] == {"role": "system", "content": "Talk like a pirate."}
    chat_id = page.url.rsplit("/c/", 1)[1]
    assert (await ui.api.get(f"/api/chats/{chat_id}")).json["agent_id"] == agent.json["id"]
    # Reopened later, the answer still names its agent; a new chat starts without one.
    await page.reload()
    await expect(last_answer(page).get_by_test_id("agent-badge").locator(".name")).to_have_text("Pirate")
    await page.get_by_role("button", name="New chat").first.click()
    await expect(page.get_by_label("Agent", exact=True)).to_have_value("")
    assert await ui.axe("agent-picker") == []
    assert ui.watch.errors == []


async def test_admin_suggestions_show_on_an_empty_chat_and_fill_the_composer(signed_in: UI) -> None:
    ui = signed_in
    page = ui.page
    await ui.goto("/")
    await page.get_by_role("button", name="Settings", exact=True).click()
    dialog = page.get_by_role("dialog", name="Settings")
    field = dialog.get_by_label("Suggested prompts, one per line")
    await field.fill("Plan a trip to Lisbon\n\nWrite a haiku")
    await dialog.get_by_role("button", name="Save suggestions").click()
    await expect(dialog.get_by_text("Suggestions saved.")).to_be_visible()
    await page.set_viewport_size({"width": 390, "height": 800})
    assert await ui.axe("settings-mobile") == []
    await ui.screenshot("settings-mobile")
    await page.set_viewport_size({"width": 1280, "height": 800})
    assert ui.api is not None
    stored = (await ui.api.get("/api/settings/suggestions")).json["items"]
    assert stored == ["Plan a trip to Lisbon", "Write a haiku"]
    await dialog.get_by_role("button", name="Close").click()

    suggestions = page.get_by_role("list", name="Suggested prompts")
    await expect(suggestions.get_by_role("button")).to_have_count(2)
    await suggestions.get_by_role("button", name="Write a haiku").click()
    await expect(composer(page)).to_have_value("Write a haiku")
    await expect(composer(page)).to_be_focused()
    # A fresh page load shows them too (read from the server).
    await page.reload()
    await expect(page.get_by_role("list", name="Suggested prompts").get_by_role("button")).to_have_count(2)
    assert await ui.axe("suggestions") == []


async def test_shortcuts_help_new_chat_and_esc_stops(signed_in: UI, upstream: FakeUpstream) -> None:
    ui = signed_in
    page = ui.page
    await ui.goto("/")
    help_dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    # `?` typed into the composer is just a character.
    await composer(page).press("?")
    await expect(composer(page)).to_have_value("?")
    await expect(help_dialog).to_be_hidden()
    await composer(page).fill("")
    await page.locator("body").focus()
    await page.evaluate("document.activeElement && document.activeElement.blur()")
    await page.keyboard.press("?")
    await expect(help_dialog).to_be_visible()
    await expect(help_dialog).to_contain_text("Stop generating")
    assert await ui.axe("shortcuts") == []
    await page.keyboard.press("Escape")
    await expect(help_dialog).to_be_hidden()

    # Esc stops a running answer.
    tokens = words(80)
    upstream.script = Script(tokens=tokens, delay=0.08)
    await send(page, "Count slowly")
    await wait_text_length(page, 10)
    await page.keyboard.press("Escape")
    await expect(last_answer(page)).to_have_attribute("data-status", "stopped")
    assert "/c/" in page.url

    # Ctrl+Shift+O: a new chat, composer focused.
    await page.keyboard.press("Control+Shift+O")
    await expect(page).to_have_url(ui.url + "/")
    await expect(page.locator("article.assistant")).to_have_count(0)
    await expect(composer(page)).to_be_focused()
    assert ui.watch.errors == []
