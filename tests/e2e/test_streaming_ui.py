"""Streaming in the browser against the real server and the fake OpenAI upstream."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, Locator, Page, expect

from tests.e2e.conftest import PASSWORD, UI, new_ui, sign_in, start_ui_app
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.wait import until

# Samples, once per animation frame, the last assistant message's status and text length,
# from before it appears until it is no longer streaming: proof of token-by-token paint.
SAMPLE_STREAM_JS = """
async () => {
  const samples = [];
  const started = performance.now();
  let seenStreaming = false;
  for (;;) {
    await new Promise(r => requestAnimationFrame(r));
    const answers = document.querySelectorAll('article.assistant');
    const last = answers[answers.length - 1];
    if (last) {
      const status = last.dataset.status;
      const text = (last.querySelector('.markdown') || {}).textContent || '';
      samples.push([status, text.length]);
      if (status === 'streaming') seenStreaming = true;
      else if (seenStreaming) return {samples, text};
    }
    if (performance.now() - started > 30000) return {samples, text: null};
  }
}
"""


def words(n: int, prefix: str = "w") -> list[str]:
    return [f"{prefix}{i} " for i in range(n)]


def answer_text(tokens: list[str]) -> str:
    return "".join(tokens).strip()


def composer(page: Page) -> Locator:
    return page.get_by_label("Message", exact=True)


async def send(page: Page, text: str) -> None:
    await composer(page).fill(text)
    await composer(page).press("Enter")


def last_answer(page: Page) -> Locator:
    return page.locator("article.assistant").last


async def wait_text_length(page: Page, at_least: int) -> None:
    await page.wait_for_function(
        """(n) => { const a = [...document.querySelectorAll('article.assistant')].pop();
                   return a && a.dataset.status === 'streaming'
                     && (a.querySelector('.markdown')?.textContent || '').length >= n; }""",
        arg=at_least,
    )


async def stored_answers(ui: UI, chat_id: str) -> list[dict[str, Any]]:
    assert ui.api is not None
    resp = await ui.api.get(f"/api/chats/{chat_id}/messages")
    return [m for m in resp.json["items"] if m["role"] == "assistant"]


def chat_id_of(page: Page) -> str:
    assert "/c/" in page.url, page.url
    return page.url.rsplit("/c/", 1)[1].split("?")[0]


async def test_register_new_chat_streams_token_by_token_and_lands_in_sidebar(
    browser: Browser, upstream: FakeUpstream, tmp_path: Path
) -> None:
    app = await start_ui_app(upstream, tmp_path, generate_titles=True)
    ui = await new_ui(browser, app)
    try:
        await _register_and_stream(ui, upstream)
    finally:
        await ui.context.close()
        await app.stop()


async def _register_and_stream(ui: UI, upstream: FakeUpstream) -> None:
    tokens = words(30)
    upstream.script = Script(tokens=tokens, delay=0.04)

    def title_request(body: dict[str, Any]) -> None:
        # The title is asked for without streaming once the first answer is complete.
        if not body.get("stream"):
            upstream.script = Script(tokens=["Willows", " and", " wind"])

    upstream.on_request = title_request
    await ui.goto("/")
    await ui.page.get_by_role("button", name="New here? Create an account").click()
    await ui.page.get_by_label("Email").fill("streamer@example.com")
    await ui.page.get_by_label("Password").fill(PASSWORD)
    await ui.page.get_by_role("button", name="Create account").click()
    await expect(composer(ui.page)).to_be_focused()

    sampling = asyncio.ensure_future(ui.page.evaluate(SAMPLE_STREAM_JS))
    await send(ui.page, "Tell me about the wind in the willows")
    result = await sampling
    lengths = [n for status, n in result["samples"] if status == "streaming" and n > 0]
    assert len(set(lengths)) >= 5, result["samples"]  # painted progressively, not at the end
    assert lengths == sorted(lengths)  # text only grows while streaming
    assert (result["text"] or "").strip() == answer_text(tokens)

    await expect(last_answer(ui.page)).to_have_attribute("data-status", "complete")
    nav = ui.page.get_by_role("navigation", name="Chats")
    link = nav.get_by_role("link", name="Willows and wind")  # generated after the answer
    await expect(link).to_be_visible(timeout=15_000)
    await expect(link).to_have_attribute("aria-current", "page")
    chat_id = chat_id_of(ui.page)
    await expect(ui.page.get_by_role("heading", level=1)).to_have_text("Willows and wind")
    await ui.screenshot("streamed-answer")
    assert ui.watch.csp_violations() == []
    assert ui.watch.errors == []
    assert chat_id


async def test_reload_mid_stream_shows_the_whole_answer_once(signed_in: UI, upstream: FakeUpstream) -> None:
    ui = signed_in
    tokens = words(40)
    upstream.script = Script(tokens=tokens, delay=0.08)
    await ui.goto("/")
    await send(ui.page, "A long answer please")
    await wait_text_length(ui.page, 30)
    chat_id = chat_id_of(ui.page)
    await ui.page.reload()
    sampling = asyncio.ensure_future(ui.page.evaluate(SAMPLE_STREAM_JS))
    result = await sampling
    assert (result["text"] or "").strip() == answer_text(tokens)
    await expect(last_answer(ui.page).locator(".markdown")).to_have_text(answer_text(tokens))
    await expect(last_answer(ui.page)).to_have_attribute("data-status", "complete")
    stored = await stored_answers(ui, chat_id)
    assert [m["content"] for m in stored] == ["".join(tokens)]
    await ui.screenshot("after-reload-mid-stream")


async def test_stop_keeps_the_partial_answer(signed_in: UI, upstream: FakeUpstream) -> None:
    ui = signed_in
    tokens = words(80)
    upstream.script = Script(tokens=tokens, delay=0.08)
    await ui.goto("/")
    await send(ui.page, "Count slowly")
    await wait_text_length(ui.page, 20)
    await ui.page.get_by_role("button", name="Stop").click()
    await expect(last_answer(ui.page)).to_have_attribute("data-status", "stopped")
    await expect(last_answer(ui.page).get_by_text("Stopped.")).to_be_visible()
    shown = (await last_answer(ui.page).locator(".markdown").text_content() or "").strip()
    assert len(shown) >= 20
    assert answer_text(tokens).startswith(shown)
    assert shown != answer_text(tokens)
    stored = await stored_answers(ui, chat_id_of(ui.page))
    assert stored[0]["status"] == "stopped"
    assert stored[0]["content"].strip() == shown
    await expect(ui.page.get_by_role("button", name="Send")).to_be_visible()


async def test_regenerate_and_edit_create_branches_and_arrows_switch(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    page = ui.page
    upstream.script = Script(tokens=["First ", "answer"])
    await ui.goto("/")
    await send(page, "Question one")
    await expect(last_answer(page).locator(".markdown")).to_have_text("First answer")
    await expect(last_answer(page)).to_have_attribute("data-status", "complete")

    # Regenerate: a sibling answer, and ‹ 2 / 2 › on it.
    upstream.script = Script(tokens=["Second ", "answer"])
    await last_answer(page).get_by_role("button", name="Regenerate").click()
    await expect(last_answer(page).locator(".markdown")).to_have_text("Second answer")
    branch = last_answer(page).get_by_role("group", name="2 / 2")
    await expect(branch).to_be_visible()
    await branch.get_by_role("button", name="Previous version").click()
    await expect(last_answer(page).locator(".markdown")).to_have_text("First answer")
    await expect(last_answer(page).get_by_role("group", name="1 / 2")).to_be_visible()
    await last_answer(page).get_by_role("button", name="Next version").click()
    await expect(last_answer(page).locator(".markdown")).to_have_text("Second answer")

    # Edit the second question: a new branch from the same parent.
    upstream.script = Script(tokens=["Answer ", "two"])
    await send(page, "Question two")
    await expect(last_answer(page).locator(".markdown")).to_have_text("Answer two")
    await expect(last_answer(page)).to_have_attribute("data-status", "complete")
    question = page.locator("article.user").last
    await question.get_by_role("button", name="Edit").click()
    editor = question.get_by_label("Edit your message")
    await editor.fill("Question two, edited")
    upstream.script = Script(tokens=["Edited ", "answer"])
    await question.get_by_role("button", name="Save and send").click()
    await expect(last_answer(page).locator(".markdown")).to_have_text("Edited answer")
    await expect(last_answer(page)).to_have_attribute("data-status", "complete")
    edited = page.locator("article.user").last
    await expect(edited).to_contain_text("Question two, edited")
    await expect(edited.get_by_role("group", name="2 / 2")).to_be_visible()
    await edited.get_by_role("button", name="Previous version").click()
    await expect(page.locator("article.user").last).to_contain_text("Question two")
    await expect(page.locator("article.user").last).not_to_contain_text("edited")
    await expect(last_answer(page).locator(".markdown")).to_have_text("Answer two")
    # The branch above is untouched: the first question still shows its chosen answer.
    await expect(page.locator("article.assistant").first.locator(".markdown")).to_have_text("Second answer")
    await ui.screenshot("branches")
    assert await ui.axe("chat-with-branches") == []

    # Edit the chat's first question: a new root, the whole conversation branches.
    first = page.locator("article.user").first
    await first.get_by_role("button", name="Edit").click()
    await first.get_by_label("Edit your message").fill("Question one, rethought")
    upstream.script = Script(tokens=["Fresh ", "start"])
    await first.get_by_role("button", name="Save and send").click()
    await expect(last_answer(page).locator(".markdown")).to_have_text("Fresh start")
    await expect(last_answer(page)).to_have_attribute("data-status", "complete")
    await expect(page.locator("article.user")).to_have_count(1)
    root = page.locator("article.user").first
    await expect(root.get_by_role("group", name="2 / 2")).to_be_visible()
    await root.get_by_role("button", name="Previous version").click()
    await expect(page.locator("article.user").first).to_contain_text("Question one")
    await expect(page.locator("article.user").first).not_to_contain_text("rethought")


async def test_second_tab_follows_the_same_live_stream(
    browser: Browser, signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    tokens = words(40)
    upstream.script = Script(tokens=["Hi"])
    await ui.goto("/")
    await send(ui.page, "Start")
    await expect(last_answer(ui.page)).to_have_attribute("data-status", "complete")
    chat_id = chat_id_of(ui.page)

    other = await ui.context.new_page()
    await other.goto(f"{ui.url}/c/{chat_id}")
    await expect(last_answer(other)).to_have_attribute("data-status", "complete")

    upstream.script = Script(tokens=tokens, delay=0.05)
    following = asyncio.ensure_future(other.evaluate(SAMPLE_STREAM_JS))
    await send(ui.page, "Now a long one")
    result = await following
    assert (result["text"] or "").strip() == answer_text(tokens)
    streamed = [n for status, n in result["samples"] if status == "streaming" and n > 0]
    assert len(set(streamed)) >= 3, result["samples"]
    await expect(last_answer(ui.page).locator(".markdown")).to_have_text(answer_text(tokens))


async def test_network_drop_resumes_without_losing_or_duplicating_text(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    tokens = words(50)
    upstream.script = Script(tokens=tokens, delay=0.06)
    await ui.goto("/")
    await send(ui.page, "Survive a drop")
    await wait_text_length(ui.page, 20)
    await ui.context.set_offline(True)
    await expect(ui.page.get_by_text("You are offline.")).to_be_visible()
    await ui.context.set_offline(False)
    await expect(last_answer(ui.page)).to_have_attribute("data-status", "complete", timeout=30_000)
    await expect(last_answer(ui.page).locator(".markdown")).to_have_text(answer_text(tokens))


async def test_falls_back_to_a_whole_answer_when_streaming_is_blocked(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    upstream.script = Script(tokens=["Not ", "streamed"])
    # A proxy that breaks event streams: the stream endpoint answers 502.
    await ui.page.route("**/chat/stream", lambda route: route.fulfill(status=502, body="Bad gateway"))
    await ui.goto("/")
    await send(ui.page, "Hello through a bad proxy")
    await expect(ui.page.get_by_text("Streaming is unavailable on this connection")).to_be_visible()
    await expect(last_answer(ui.page).locator(".markdown")).to_have_text("Not streamed")
    await expect(last_answer(ui.page)).to_have_attribute("data-status", "complete")
    assert "/c/" in ui.page.url


async def test_upstream_error_is_shown_inline_and_retry_answers(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    upstream.script = Script(status=500)
    await ui.goto("/")
    await send(ui.page, "This will fail first")
    alert = last_answer(ui.page).get_by_role("alert")
    await expect(alert).to_be_visible()
    await ui.screenshot("upstream-error")
    upstream.script = Script(tokens=["Recovered"])
    await alert.get_by_role("button", name="Retry").click()
    await expect(last_answer(ui.page).locator(".markdown")).to_have_text("Recovered")
    await expect(last_answer(ui.page).get_by_role("group", name="2 / 2")).to_be_visible()


async def test_search_finds_a_message_in_another_chat_and_opens_it(
    signed_in: UI, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    ui = signed_in
    upstream.script = Script(tokens=["The ", "aurora ", "borealis ", "glows ", "green."])
    await ui.goto("/")
    await send(ui.page, "What colour is the northern sky?")
    await expect(last_answer(ui.page)).to_have_attribute("data-status", "complete")
    first_chat = chat_id_of(ui.page)
    upstream.script = Script(tokens=["Unrelated."])
    await ui.page.get_by_role("button", name="New chat").click()
    await send(ui.page, "Something else entirely")
    await expect(last_answer(ui.page)).to_have_attribute("data-status", "complete")
    assert chat_id_of(ui.page) != first_chat

    assert ui.api is not None
    api = ui.api
    message_ids: list[str] = []

    async def indexed() -> bool:  # the indexer ships new messages in batches
        found = await api.get("/api/search?q=borealis")
        message_ids[:] = [h["message_id"] for h in found.json["hits"] if h["message_id"]]
        return bool(message_ids)

    assert await until(indexed, timeout=20, interval=0.2), "the message was never indexed"

    await ui.page.keyboard.press("Control+k")
    await ui.page.get_by_label("Search messages and chats").fill("borealis")
    # The generated title may match too; the message's hit is the one with a role label.
    hit = ui.page.locator("a.hit").filter(has_text="Assistant")
    await expect(hit.locator("mark")).to_have_text("borealis")
    await ui.screenshot("search")
    await ui.page.keyboard.press("ArrowDown")
    for _ in range(await ui.page.locator("a.hit").count()):
        if await hit.evaluate("el => el === document.activeElement"):
            break
        await ui.page.keyboard.press("ArrowDown")
    await expect(hit).to_be_focused()
    await ui.page.keyboard.press("Enter")
    await expect(ui.page.get_by_role("dialog")).to_have_count(0)
    assert chat_id_of(ui.page) == first_chat
    message_id = message_ids[0]
    target = ui.page.locator(f'article[data-message-id="{message_id}"]')
    await expect(target).to_be_in_viewport()
    await expect(target).to_contain_text("borealis")


async def test_narrow_screen_streaming(
    browser: Browser, ui_app: Any, upstream: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    phone = await new_ui(browser, ui_app, width=360, height=740)
    try:
        await sign_in(phone, http, "phone@example.com")
        upstream.script = Script(tokens=["Fits ", "on ", "a ", "phone."])
        await phone.goto("/")
        await send(phone.page, "Hello from a phone")
        await expect(last_answer(phone.page).locator(".markdown")).to_have_text("Fits on a phone.")
        assert await phone.page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
        await phone.screenshot("phone-chat")
    finally:
        await phone.context.close()


async def test_reasoning_streams_into_a_collapsible_section(signed_in: UI, upstream: FakeUpstream) -> None:
    ui = signed_in
    upstream.script = Script(
        reasoning=["Let me ", "think ", "about it."], tokens=["The ", "answer."], delay=0.05
    )
    await ui.goto("/")
    await send(ui.page, "Think first")
    answer = last_answer(ui.page)
    await expect(answer).to_have_attribute("data-status", "complete")
    await expect(answer.locator(".markdown")).to_have_text("The answer.")
    reasoning = answer.locator("details.reasoning")
    await expect(reasoning.locator("summary")).to_have_text("Reasoning")
    await expect(reasoning.locator(".reasoning-text")).to_be_hidden()
    await reasoning.locator("summary").click()
    await expect(reasoning.locator(".reasoning-text")).to_have_text("Let me think about it.")


async def test_a_refused_send_is_shown_inline_and_retry_sends_it_again(
    signed_in: UI, upstream: FakeUpstream
) -> None:
    ui = signed_in
    upstream.script = Script(tokens=["Made ", "it."])
    refusal = {"error": {"code": "overloaded", "message": "too many answers right now"}}
    await ui.page.route(
        "**/chat/stream",
        lambda route: route.fulfill(status=503, content_type="application/json", body=json.dumps(refusal)),
    )
    await ui.goto("/")
    await send(ui.page, "Please answer")
    alert = last_answer(ui.page).get_by_role("alert")
    await expect(alert).to_contain_text("too many answers right now")
    await expect(last_answer(ui.page).get_by_role("button", name="Regenerate")).to_have_count(0)
    await ui.page.unroute("**/chat/stream")
    await alert.get_by_role("button", name="Retry").click()
    await expect(last_answer(ui.page).locator(".markdown")).to_have_text("Made it.")
    await expect(ui.page.locator("article.user")).to_have_count(1)
    assert "/c/" in ui.page.url
