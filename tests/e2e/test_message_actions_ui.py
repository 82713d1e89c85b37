"""Through the UI: continue a cut answer, rate answers, delete a message, /prompts, tags."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import UI
from tests.e2e.seed import add_message, create_chat, seed_conversation, user_by_email
from tests.support.fake_upstream import FakeUpstream, Script


async def test_continue_a_cut_answer_in_place(signed_in: UI, upstream: FakeUpstream) -> None:
    ui, page = signed_in, signed_in.page
    user = await user_by_email(ui.app.services, ui.email or "")
    chat = await create_chat(ui.app.services, user, "Cut")
    q = await add_message(ui.app.services, user, chat, "user", "Tell me a story", None)
    a = await add_message(ui.app.services, user, chat, "assistant", "Once upon a", q.id,
                          finish_reason="length", model="fake-model")
    await ui.goto(f"/c/{chat.id}")
    answer = page.locator("article.assistant").last
    await expect(answer.locator(".markdown")).to_have_text("Once upon a")
    upstream.script = Script(tokens=[" time", " there was a test."])
    await answer.get_by_role("button", name="Continue").click()
    await expect(answer.locator(".markdown")).to_have_text("Once upon a time there was a test.")
    await expect(answer).to_have_attribute("data-status", "complete")
    await expect(answer.get_by_role("button", name="Continue")).to_have_count(0)  # no longer cut
    assert ui.api is not None
    stored = (await ui.api.get(f"/api/chats/{chat.id}")).json["messages"]
    assert [m["id"] for m in stored] == [q.id, a.id]  # the same message, no new sibling
    assert stored[-1]["content"] == "Once upon a time there was a test."
    assert upstream.requests[-1]["messages"][-2] == {"role": "assistant", "content": "Once upon a"}
    assert ui.watch.errors == []
    await answer.get_by_role("button", name="More actions").click()
    await ui.screenshot("message-actions")
    assert await ui.axe("message-actions") == []


async def test_stopped_answers_offer_continue(signed_in: UI) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    chat = await create_chat(ui.app.services, user, "Stopped")
    q = await add_message(ui.app.services, user, chat, "user", "q", None)
    await add_message(ui.app.services, user, chat, "assistant", "partial", q.id, status="stopped")
    await ui.goto(f"/c/{chat.id}")
    await expect(ui.page.locator("article.assistant").get_by_role("button", name="Continue")).to_be_visible()


async def test_thumbs_toggle_and_comment(signed_in: UI) -> None:
    ui, page = signed_in, signed_in.page
    user = await user_by_email(ui.app.services, ui.email or "")
    chat = await create_chat(ui.app.services, user, "Rate")
    q = await add_message(ui.app.services, user, chat, "user", "q", None)
    await add_message(ui.app.services, user, chat, "assistant", "an answer", q.id, model="fake-model")
    await ui.goto(f"/c/{chat.id}")
    answer = page.locator("article.assistant")
    up = answer.get_by_role("button", name="Good answer")
    down = answer.get_by_role("button", name="Bad answer")
    await up.click()
    await expect(up).to_have_attribute("aria-pressed", "true")
    await expect(down).to_have_attribute("aria-pressed", "false")
    await answer.get_by_role("button", name="Add a comment").click()
    await answer.get_by_label("Comment on this answer").fill("Clear and short")
    await answer.get_by_role("button", name="Save comment").click()
    await expect(answer.get_by_label("Comment on this answer")).to_have_count(0)
    assert ui.api is not None
    stored = (await ui.api.get(f"/api/chats/{chat.id}")).json["messages"][-1]
    assert stored["feedback"] == {"rating": 1, "comment": "Clear and short"}
    await down.click()
    await expect(down).to_have_attribute("aria-pressed", "true")
    await expect(up).to_have_attribute("aria-pressed", "false")
    await down.click()  # a second click clears it
    await expect(down).to_have_attribute("aria-pressed", "false")
    stored = (await ui.api.get(f"/api/chats/{chat.id}")).json["messages"][-1]
    assert stored["feedback"] is None
    # Questions have no thumbs.
    await expect(page.locator("article.user").get_by_role("button", name="Good answer")).to_have_count(0)

    # The admin (the first account) sees the ratings per model.
    await up.click()
    await expect(up).to_have_attribute("aria-pressed", "true")
    await page.get_by_role("button", name="Administration").click()
    ratings = page.get_by_role("dialog", name="Administration").get_by_role(
        "region", name="Ratings of answers per model")
    await expect(ratings.locator("tbody tr")).to_have_count(1)
    await expect(ratings.locator("tbody td")).to_have_text(["fake-model", "1", "0"])


async def test_delete_a_message_and_what_follows_after_confirming(signed_in: UI) -> None:
    ui, page = signed_in, signed_in.page
    user = await user_by_email(ui.app.services, ui.email or "")
    chat, messages = await seed_conversation(
        ui.app.services, user, "Prune",
        [("first q", "first a"), ("second q", "second a"), ("third q", "third a")],
    )
    await ui.goto(f"/c/{chat.id}")
    second = page.locator(f"article[data-message-id='{messages[2].id}']")
    await second.get_by_role("button", name="More actions").click()
    await second.get_by_role("button", name="Delete…").click()
    confirm = second.get_by_role("alertdialog")
    await expect(confirm).to_contain_text("Delete this message and everything below it?")
    await confirm.get_by_role("button", name="Cancel").click()
    await expect(page.locator("article.message")).to_have_count(6)  # nothing deleted

    await second.get_by_role("button", name="More actions").click()
    await second.get_by_role("button", name="Delete…").click()
    await second.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    await expect(page.locator("article.message")).to_have_count(2)
    await expect(page.locator("article.assistant .markdown")).to_have_text(["first a"])
    assert ui.api is not None
    left = (await ui.api.get(f"/api/chats/{chat.id}/messages")).json["items"]
    assert [m["content"] for m in left] == ["first q", "first a"]
    assert ui.watch.dialogs == []


async def test_slash_opens_the_prompt_picker_and_fills_variables(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui, page = signed_in, signed_in.page
    assert ui.api is not None
    await ui.api.post("/api/prompts", {"name": "Translate", "command": "translate",
                                       "body": "Translate {{text}} into {{language}}."})
    summary = {"name": "Summary", "command": "summarise", "body": "Summarise the chat."}
    await ui.api.post("/api/prompts", summary)
    await ui.goto("/")
    composer = page.get_by_label("Message", exact=True)
    await composer.fill("/")
    picker = page.get_by_role("region", name="Saved prompts")
    await expect(picker.get_by_role("button")).to_have_count(2)
    await ui.screenshot("prompt-picker")
    assert await ui.axe("prompt-picker") == []
    await composer.press_sequentially("tra")
    await expect(picker.get_by_role("button")).to_have_text(["/translate Translate"])
    await composer.press("Enter")
    form = page.get_by_role("group", name="Fill in Translate")
    await form.get_by_label("text").fill("good morning")
    await form.get_by_label("language").fill("French")
    await form.get_by_role("button", name="Use prompt").click()
    await expect(composer).to_have_value("Translate good morning into French.")
    await expect(composer).to_be_focused()
    upstream.script = Script(tokens=["Bonjour."])
    await composer.press("Enter")
    await expect(page.locator("article.assistant .markdown")).to_have_text("Bonjour.")
    assert upstream.requests[-1]["messages"][-1]["content"] == "Translate good morning into French."

    # A prompt without variables goes straight into the composer; Escape closes the picker.
    await composer.fill("/sum")
    await page.get_by_role("region", name="Saved prompts").get_by_role("button", name="/summarise").click()
    await expect(composer).to_have_value("Summarise the chat.")
    await composer.fill("/zzz")
    await expect(page.get_by_role("region", name="Saved prompts")).to_contain_text("No saved prompt matches.")
    await composer.press("Escape")
    await expect(page.get_by_role("region", name="Saved prompts")).to_have_count(0)


async def test_tags_in_the_sidebar_and_the_filter(signed_in: UI) -> None:
    ui, page = signed_in, signed_in.page
    user = await user_by_email(ui.app.services, ui.email or "")
    for title in ("Alpha", "Beta"):
        await create_chat(ui.app.services, user, title)
    await ui.goto("/")
    nav = page.get_by_role("navigation", name="Chats")
    await nav.get_by_role("button", name="Actions for “Alpha”").click()
    await nav.get_by_role("button", name="Edit tags").click()
    field = nav.get_by_label("Add a tag")
    await expect(field).to_be_focused()
    await field.fill("Work")
    await field.press("Enter")
    await field.fill("ideas")
    await field.press("Enter")
    editor = nav.get_by_role("group", name="Tags of Alpha")
    await expect(editor.locator(".chip")).to_have_text(["work", "ideas"])
    await editor.get_by_role("button", name="Remove tag ideas").click()
    await expect(editor.locator(".chip")).to_have_text(["work"])
    await editor.get_by_role("button", name="Done").click()
    alpha = nav.locator(".chat-row", has_text="Alpha")
    await expect(alpha.locator(".tag-chip")).to_have_text(["work"])

    await nav.get_by_label("Filter by tag").select_option("work")
    await expect(nav.locator(".chat-row .title")).to_have_text(["Alpha"])
    await nav.get_by_label("Filter by tag").select_option("")
    await expect(nav.locator(".chat-row .title")).to_have_text(["Alpha", "Beta"])
    assert ui.api is not None
    listed = (await ui.api.get("/api/chats?tag=work")).json["items"]
    assert [c["title"] for c in listed] == ["Alpha"]
    assert await ui.axe("tags-sidebar") == []


async def test_the_prompts_dialog_creates_edits_and_deletes_prompts(signed_in: UI) -> None:
    ui, page = signed_in, signed_in.page
    await ui.goto("/")
    await page.get_by_role("navigation", name="Chats").get_by_role("button", name="Prompts").click()
    dialog = page.get_by_role("dialog", name="Prompts")
    await expect(dialog).to_contain_text("No saved prompts yet.")
    await dialog.get_by_role("button", name="New prompt").click()
    await dialog.get_by_label("Name").fill("Explain")
    await dialog.get_by_label("Command (letters, digits and dashes)").fill("explain")
    await dialog.get_by_label("Prompt", exact=True).fill("Explain {{topic}} simply.")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.locator(".prompts li")).to_have_count(1)
    await expect(dialog.locator(".prompts li")).to_contain_text("/explain")
    await expect(dialog.locator(".prompts li")).to_contain_text("v1")

    await dialog.get_by_role("button", name="Edit /explain").click()
    await dialog.get_by_label("Prompt", exact=True).fill("Explain {{topic}} to a child.")
    await dialog.get_by_role("button", name="Save").click()
    await expect(dialog.locator(".prompts li")).to_contain_text("v2")
    assert ui.api is not None
    prompt = (await ui.api.get("/api/prompts")).json["items"][0]
    versions = (await ui.api.get(f"/api/prompts/{prompt['id']}/versions")).json["items"]
    assert [v["body"] for v in versions] == ["Explain {{topic}} to a child.", "Explain {{topic}} simply."]

    # A bad command is refused with the server's message, and nothing is saved.
    await dialog.get_by_role("button", name="New prompt").click()
    await dialog.get_by_label("Name").fill("Bad")
    await dialog.get_by_label("Command (letters, digits and dashes)").fill("not ok!")
    await dialog.get_by_label("Prompt", exact=True).fill("x")
    await dialog.get_by_role("button", name="Save").click()
    await expect(page.get_by_text("command must be")).to_be_visible()
    await dialog.get_by_role("button", name="Cancel").click()

    await dialog.get_by_role("button", name="Delete /explain").click()
    await expect(dialog).to_contain_text("No saved prompts yet.")
    assert (await ui.api.get("/api/prompts")).json["items"] == []
    assert await ui.axe("prompts-dialog") == []


async def test_an_answer_can_be_continued_again_and_again(signed_in: UI, upstream: FakeUpstream) -> None:
    ui, page = signed_in, signed_in.page
    user = await user_by_email(ui.app.services, ui.email or "")
    chat = await create_chat(ui.app.services, user, "Long")
    q = await add_message(ui.app.services, user, chat, "user", "Count", None)
    await add_message(ui.app.services, user, chat, "assistant", "0", q.id, finish_reason="length",
                      model="fake-model")
    await ui.goto(f"/c/{chat.id}")
    answer = page.locator("article.assistant").last
    expected = "0"
    for n in range(1, 6):
        upstream.script = Script(tokens=[f" {n}"], finish_reason="length")
        await answer.get_by_role("button", name="Continue").click()
        expected += f" {n}"
        await expect(answer.locator(".markdown")).to_have_text(expected)
        await expect(answer).to_have_attribute("data-status", "complete")
    assert ui.api is not None
    assert (await ui.api.get(f"/api/chats/{chat.id}")).json["messages"][-1]["content"] == "0 1 2 3 4 5"
