"""Issue 19's "small but visible" fixes, in Chromium: Esc, the narrow header, tables,
display maths, the edit box, a new chat's system prompt, search snippets, code blocks."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect

from tests.e2e.conftest import UI, new_ui, sign_in
from tests.e2e.seed import add_message, create_chat, user_by_email
from tests.e2e.test_streaming_ui import last_answer, send, wait_text_length, words
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.wait import until

MARKDOWN_ANSWER = "\n\n".join([
    "Energy: $$E = mc^2$$ and then",
    "| name | value |\n|---|---|\n| supercalifragilisticexpialidocious_identifier_name | 1 |",
    "```python\n# a comment that must stay readable\nx = 1  # set x\n" + "y = 2 " * 60 + "\n```",
])


async def seeded(ui: UI, title: str, question: str, answer: str) -> str:
    user = await user_by_email(ui.app.services, ui.email or "")
    chat = await create_chat(ui.app.services, user, title)
    q = await add_message(ui.app.services, user, chat, "user", question, None)
    await add_message(ui.app.services, user, chat, "assistant", answer, q.id)
    return chat.id


async def test_escape_stops_the_answer(signed_in: UI, upstream: FakeUpstream) -> None:
    ui = signed_in
    upstream.script = Script(tokens=words(80), delay=0.08)
    await ui.goto("/")
    await send(ui.page, "Count slowly")
    await wait_text_length(ui.page, 20)
    await ui.page.keyboard.press("Escape")
    await expect(last_answer(ui.page)).to_have_attribute("data-status", "stopped")
    await expect(last_answer(ui.page).get_by_text("Stopped.")).to_be_visible()


async def test_one_escape_closes_search_and_snippets_show_no_markdown(signed_in: UI) -> None:
    ui = signed_in
    await seeded(ui, "Zebras", "Tell me about zebras",
                 "## Stripes\n**Zebras** have `stripes`, see [the zoo](https://zoo.example/zebra).")
    assert ui.api is not None
    api = ui.api

    async def indexed() -> bool:
        found = await api.get("/api/search?q=stripes")
        return any(h["message_id"] for h in found.json["hits"])

    assert await until(indexed, timeout=20, interval=0.2), "the message was never indexed"
    await ui.goto("/")
    await expect(ui.page.get_by_role("link", name="Zebras")).to_be_visible()
    await ui.page.keyboard.press("Control+k")
    field = ui.page.get_by_label("Search messages and chats")
    await expect(field).to_be_focused()
    await field.fill("stripes")
    hit = ui.page.locator("a.hit").filter(has_text="Assistant").first
    await expect(hit).to_be_visible()
    snippet = (await hit.locator(".snippet").text_content()) or ""
    for markup in ("**", "`", "##", "](", "https://"):
        assert markup not in snippet, snippet
    await field.press("Escape")
    await expect(ui.page.get_by_role("dialog", name="Search chats")).to_be_hidden()


async def _box(ui: UI, selector: str) -> dict[str, Any]:
    box: dict[str, Any] = await ui.page.eval_on_selector(
        selector,
        "el => { const r = el.getBoundingClientRect();"
        " return {left: r.left, right: r.right, width: r.width, top: r.top, bottom: r.bottom,"
        " scrollWidth: el.scrollWidth, clientWidth: el.clientWidth}; }",
    )
    return box


async def test_a_390px_header_shows_the_title_and_the_whole_model_picker(
    browser: Browser, ui: UI, http: Any
) -> None:
    mobile = await sign_in(await new_ui(browser, ui.app, width=390, height=844), http, "mobile@example.com")
    try:
        chat_id = await seeded(mobile, "Mobile title check", "hi", "hello")
        await mobile.goto(f"/c/{chat_id}")
        await expect(mobile.page.get_by_role("heading", name="Mobile title check", level=1)).to_be_visible()
        title = await _box(mobile, "#chat-title")
        assert title["scrollWidth"] <= title["clientWidth"], title  # not cut to "M…"
        picker = await _box(mobile, "#model-picker")
        assert picker["right"] <= 390 and picker["left"] >= 0, picker
        natural: float = await mobile.page.eval_on_selector(
            "#model-picker",
            "el => { const c = el.cloneNode(true); c.style.maxWidth = 'none'; c.style.width = 'auto';"
            " c.style.flex = 'none'; document.body.append(c); const w = c.getBoundingClientRect().width;"
            " c.remove(); return w; }",
        )
        assert picker["width"] >= natural - 1, (picker, natural)  # the model's name is not cut
        await mobile.screenshot("mobile-header-390")
    finally:
        await mobile.context.close()


async def test_tables_scroll_maths_has_no_dollars_and_code_is_readable_and_reachable(signed_in: UI) -> None:
    ui = signed_in
    await ui.page.set_viewport_size({"width": 390, "height": 844})
    chat_id = await seeded(ui, "Rendering", "Show me", MARKDOWN_ANSWER)
    await ui.goto(f"/c/{chat_id}")
    answer = last_answer(ui.page)
    await expect(answer.locator(".katex").first).to_be_visible()
    text = (await answer.locator(".markdown").text_content()) or ""
    assert "$" not in text, text
    # The long word stays whole in its cell; the table scrolls sideways in a focusable region.
    cell = answer.locator("td").first
    assert await cell.evaluate("el => getComputedStyle(el).overflowWrap") == "normal"
    wrap = await _box(ui, ".markdown .table-wrap")
    assert wrap["scrollWidth"] > wrap["clientWidth"], wrap
    await expect(answer.locator(".table-wrap")).to_have_attribute("tabindex", "0")
    # Highlighted comments are readable; the wide code block takes keyboard focus (axe).
    await expect(answer.locator(".hljs-comment").first).to_be_visible()
    violations = await ui.axe("rendering-390")
    ids = {v["id"] for v in violations}
    assert "color-contrast" not in ids and "scrollable-region-focusable" not in ids, violations
    pre = answer.locator("pre").first
    await pre.focus()
    await expect(pre).to_be_focused()
    await expect(pre).to_have_attribute("aria-label", "Code (python)")


async def test_the_edit_box_stays_inside_its_bubble(signed_in: UI) -> None:
    ui = signed_in
    chat_id = await seeded(ui, "Edit me", "short", "fine")
    await ui.goto(f"/c/{chat_id}")
    await ui.page.locator("article.user").hover()
    await ui.page.get_by_role("button", name="Edit", exact=True).click()
    bubble = await _box(ui, "article.user .bubble")
    box = await _box(ui, "article.user textarea")
    assert bubble["left"] <= box["left"] and box["right"] <= bubble["right"], (bubble, box)


async def test_a_new_chat_takes_a_system_prompt_before_its_first_message(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    upstream.script = Script(tokens=["Arr", "!"])
    await ui.goto("/")
    await ui.page.get_by_role("button", name="Chat settings").click()
    await ui.page.get_by_role("button", name="System prompt").click()
    await ui.page.get_by_label("System prompt").fill("You are a pirate.")
    await ui.page.get_by_role("button", name="Save").click()
    await send(ui.page, "Hello")
    await expect(last_answer(ui.page)).to_have_attribute("data-status", "complete")
    assert upstream.requests[0]["messages"][0] == {"role": "system", "content": "You are a pirate."}
    assert ui.api is not None
    chats = (await ui.api.get("/api/chats")).json["items"]
    assert len(chats) == 1
    assert (await ui.api.get(f"/api/chats/{chats[0]['id']}")).json["system_prompt"] == "You are a pirate."
