"""Per-chat tools: system prompt, model picker, export, copy message."""

from __future__ import annotations

import json

from playwright.async_api import expect

from tests.e2e.conftest import UI
from tests.e2e.seed import seed_conversation, user_by_email
from tests.support.fake_upstream import FakeUpstream, Script


async def test_system_prompt_reaches_the_model_and_export_downloads(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    page = ui.page
    user = await user_by_email(ui.app.services, ui.email or "")
    chat, _ = await seed_conversation(ui.app.services, user, "Tools", [("hello", "**hi** there")])
    await ui.goto(f"/c/{chat.id}")

    await page.get_by_role("button", name="Chat settings").click()
    await page.get_by_role("button", name="System prompt").click()
    dialog = page.get_by_role("dialog", name="Chat settings")
    await dialog.get_by_label("System prompt").fill("Answer like a pirate.")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog).to_be_hidden()
    assert ui.api is not None
    assert (await ui.api.get(f"/api/chats/{chat.id}")).json["system_prompt"] == "Answer like a pirate."

    upstream.script = Script(tokens=["Arr."])
    composer = page.get_by_label("Message", exact=True)
    await composer.fill("Greet me")
    await composer.press("Enter")
    await expect(page.locator("article.assistant").last.locator(".markdown")).to_have_text("Arr.")
    sent = upstream.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Answer like a pirate."}
    assert sent[-1]["content"] == "Greet me"
    assert sent[-1]["role"] == "user"

    await page.get_by_role("button", name="Chat settings").click()
    async with page.expect_download() as markdown_download:
        await page.get_by_role("button", name="Export as Markdown").click()
    markdown = (await markdown_download.value).suggested_filename
    assert markdown == "tools.md"
    text = open(await (await markdown_download.value).path()).read()  # noqa: ASYNC230
    assert "# Tools" in text and "**hi** there" in text and "Arr." in text

    await page.get_by_role("button", name="Chat settings").click()
    async with page.expect_download() as json_download:
        await page.get_by_role("button", name="Export as JSON").click()
    exported = json.loads(open(await (await json_download.value).path()).read())  # noqa: ASYNC230
    assert exported["chat"]["id"] == chat.id
    assert [m["content"] for m in exported["messages"]] == ["hello", "**hi** there", "Greet me", "Arr."]
    assert ui.watch.csp_violations() == []


async def test_model_picker_sets_the_chat_model(signed_in: UI, upstream: FakeUpstream) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    chat, _ = await seed_conversation(ui.app.services, user, "Models", [("q", "a")])
    await ui.goto(f"/c/{chat.id}")
    picker = ui.page.get_by_label("Model", exact=True)
    await expect(picker).to_be_visible()
    patched = f"/api/chats/{chat.id}"
    async with ui.page.expect_response(lambda r: r.request.method == "PATCH" and patched in r.url):
        await picker.select_option("fake-model")
    assert ui.api is not None
    chat_json = (await ui.api.get(f"/api/chats/{chat.id}")).json
    assert chat_json["model"] == "fake-model"
    upstream.script = Script(tokens=["ok"])
    composer = ui.page.get_by_label("Message", exact=True)
    await composer.fill("Use the picked model")
    await composer.press("Enter")
    await expect(ui.page.locator("article.assistant").last).to_have_attribute("data-status", "complete")
    assert upstream.requests[-1]["model"] == "fake-model"


async def test_copy_message_copies_its_markdown(signed_in: UI) -> None:
    ui = signed_in
    await ui.context.grant_permissions(["clipboard-read", "clipboard-write"])
    user = await user_by_email(ui.app.services, ui.email or "")
    chat, messages = await seed_conversation(ui.app.services, user, "Copy", [("q", "Some **bold** text")])
    await ui.goto(f"/c/{chat.id}")
    answer = ui.page.locator(f'[data-message-id="{messages[1].id}"]')
    await answer.get_by_role("button", name="Copy", exact=True).click()
    await expect(answer.get_by_role("button", name="Copied")).to_be_visible()
    assert await ui.page.evaluate("navigator.clipboard.readText()") == "Some **bold** text"
