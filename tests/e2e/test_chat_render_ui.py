"""Chats written into the real store, opened in the browser: safety, long chats, a11y."""

from __future__ import annotations

import json

from playwright.async_api import expect

from tests.e2e.conftest import ARTIFACTS, UI
from tests.e2e.seed import (
    SCROLL_FPS_JS,
    XSS_ANSWER,
    add_message,
    create_chat,
    seed_conversation,
    seed_long_chat,
    user_by_email,
)

# Installed before any page script runs: counts every <script> element ever created, and
# records any attempt to run a handler that the payloads would trigger.
WATCH_SCRIPTS_JS = """
window.__scriptLog = [];
window.__alerts = [];
window.alert = (m) => window.__alerts.push(String(m));
const seen = new WeakSet();
function note(node) {
  if (seen.has(node)) return;
  seen.add(node);
  // The app's own bundle is the one script the page is allowed to have.
  if (node.type === 'module' && (node.getAttribute('src') || '').startsWith('/assets/')) return;
  window.__scriptLog.push(node.outerHTML.slice(0, 200));
}
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeType !== 1) continue;
    if (n.tagName === 'SCRIPT') note(n);
    if (n.querySelectorAll) n.querySelectorAll('script').forEach(note);
  }
}).observe(document, {childList: true, subtree: true});
"""


QUESTION = "Show me <b>markup</b> <img src=x onerror=alert(0)>"


async def test_dangerous_answer_renders_inert(signed_in: UI) -> None:
    ui = signed_in
    await ui.context.add_init_script(WATCH_SCRIPTS_JS)
    user = await user_by_email(ui.app.services, ui.email or "")
    chat, messages = await seed_conversation(
        ui.app.services, user, "Dangerous", [(QUESTION, XSS_ANSWER)]
    )
    await ui.goto(f"/c/{chat.id}")
    answer = ui.page.locator(f'[data-message-id="{messages[1].id}"]')
    await expect(answer).to_contain_text("An image: <img src=x onerror=alert(1)>")
    await expect(answer).to_contain_text("<script>alert(4)</script>")
    await expect(ui.page.locator(f'[data-message-id="{messages[0].id}"]')).to_contain_text(QUESTION)
    # The links keep their text but lose their javascript:/data: targets.
    link = answer.get_by_text("javascript link")
    await expect(link).to_be_visible()
    assert await link.get_attribute("href") is None
    await link.click()
    await answer.get_by_text("a data URL").click()
    await ui.page.get_by_text("raw anchor").click()

    report = await ui.page.evaluate(
        """(id) => {
          const el = document.querySelector(`[data-message-id="${id}"]`);
          const attrs = [...el.querySelectorAll('*')]
            .flatMap(n => [...n.attributes].map(a => [n.tagName, a.name, a.value]));
          return {
            scriptsInMessage: el.querySelectorAll('script').length,
            imgs: el.querySelectorAll('img, svg circle, iframe, object, embed').length,
            handlers: attrs.filter(([, name]) => name.startsWith('on')),
            badUrls: attrs.filter(([, , v]) => /^\\s*(javascript|data|vbscript):/i.test(v)),
            scriptsCreated: window.__scriptLog,
            alerts: window.__alerts,
            scriptsInDocument: document.scripts.length,
          };
        }""",
        messages[1].id,
    )
    await ui.screenshot("xss-inert")
    assert ui.watch.dialogs == []
    assert report["alerts"] == []
    assert report["scriptsCreated"] == []
    assert report["scriptsInMessage"] == 0
    assert report["scriptsInDocument"] == 1  # the app's own module script
    assert report["imgs"] == 0
    assert report["handlers"] == []
    assert report["badUrls"] == []
    assert ui.page.url.endswith(f"/c/{chat.id}")
    assert ui.watch.errors == []


async def test_code_blocks_math_and_copy(signed_in: UI) -> None:
    ui = signed_in
    await ui.context.grant_permissions(["clipboard-read", "clipboard-write"])
    user = await user_by_email(ui.app.services, ui.email or "")
    answer = "Code:\n\n```python\nprint('hi')\n```\n\nEuler: $e^{i\\pi}+1=0$"
    chat, messages = await seed_conversation(ui.app.services, user, "Code", [("code please", answer)])
    await ui.goto(f"/c/{chat.id}")
    block = ui.page.locator(".code-block")
    await expect(block.locator(".code-lang")).to_have_text("python")
    # highlight.js and KaTeX arrive lazily, then the blocks are rendered again with them.
    await expect(block.locator(".hljs-built_in, .hljs-string").first).to_be_visible()
    await expect(ui.page.locator(".katex").first).to_be_visible()
    await block.get_by_role("button", name="Copy").click()
    await expect(block.get_by_role("button", name="Copied")).to_be_visible()
    assert await ui.page.evaluate("navigator.clipboard.readText()") == "print('hi')"
    assert ui.watch.csp_violations() == []


async def test_chat_screen_has_no_serious_accessibility_violations(signed_in: UI) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    chat, _ = await seed_conversation(
        ui.app.services,
        user,
        "Accessible chat",
        [
            ("Hello", "Hi! Here is a list:\n\n- one\n- two\n\n```js\nlet x = 1;\n```"),
            ("Thanks", "You're welcome."),
        ],
    )
    await create_chat(ui.app.services, user, "Another chat")
    await ui.goto(f"/c/{chat.id}")
    await expect(ui.page.get_by_role("heading", name="Accessible chat")).to_be_visible()
    await expect(ui.page.locator(".hljs-keyword").first).to_be_visible()
    assert await ui.axe("chat") == []
    await ui.page.emulate_media(color_scheme="dark")
    assert await ui.axe("chat-dark") == []
    await ui.screenshot("chat-dark")
    await ui.page.set_viewport_size({"width": 360, "height": 740})
    assert await ui.page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    await ui.screenshot("chat-360")
    await ui.page.get_by_role("button", name="Open the chat list").click()
    await expect(ui.page.get_by_role("link", name="Another chat")).to_be_visible()
    await ui.screenshot("chat-360-drawer")
    assert await ui.axe("chat-360-drawer") == []
    assert ui.watch.csp_violations() == []


async def test_keyboard_reaches_the_composer_and_search(signed_in: UI) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    chat, _ = await seed_conversation(ui.app.services, user, "Keys", [("q", "a")])
    await ui.goto(f"/c/{chat.id}")
    await expect(ui.page.get_by_role("heading", name="Keys")).to_be_visible()
    await ui.page.keyboard.press("Tab")
    await expect(ui.page.get_by_role("link", name="Skip to the conversation")).to_be_focused()
    await ui.page.keyboard.press("Enter")
    await expect(ui.page.get_by_label("Message", exact=True)).to_be_focused()
    await ui.page.keyboard.press("Control+k")
    await expect(ui.page.get_by_label("Search messages and chats")).to_be_focused()
    await ui.page.keyboard.press("Escape")
    await expect(ui.page.get_by_role("dialog")).to_have_count(0)


async def test_thousand_message_chat_keeps_the_dom_small(signed_in: UI) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    chat, messages = await seed_long_chat(ui.app.services, user, 1000)
    assert len(messages) == 1000
    await ui.goto(f"/c/{chat.id}")
    last = ui.page.locator(f'[data-message-id="{messages[-1].id}"]')
    await expect(last).to_be_visible()
    in_list = await ui.dom_elements(".scroller")
    in_document = await ui.page.evaluate("document.getElementsByTagName('*').length")
    assert in_list < 3000, in_list
    await ui.screenshot("long-chat-bottom")

    # Every message is reachable: the top of the list shows the first one.
    await ui.page.evaluate("document.querySelector('.scroller').scrollTop = 0")
    await expect(ui.page.locator(f'[data-message-id="{messages[0].id}"]')).to_be_visible()
    await ui.screenshot("long-chat-top")

    result = await ui.page.evaluate(SCROLL_FPS_JS, {"step": 120, "seconds": 3})
    assert result["elements_in_list"] < 3000, result
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "long-chat-scroll.json").write_text(
        json.dumps({**result, "elements_at_open": in_list, "document_elements": in_document}, indent=2)
    )
    assert result["frames"] > 10  # the page kept painting while it scrolled
    assert ui.watch.errors == []


async def test_message_statuses_are_shown(signed_in: UI) -> None:
    ui = signed_in
    user = await user_by_email(ui.app.services, ui.email or "")
    chat = await create_chat(ui.app.services, user, "Statuses")
    q = await add_message(ui.app.services, user, chat, "user", "first", None)
    a = await add_message(
        ui.app.services, user, chat, "assistant", "partial answ", q.id, status="stopped",
        reasoning="I should think about this.",
        sources=[{"n": 1, "url": "https://example.com/a", "title": "Example A"}],
    )
    q2 = await add_message(ui.app.services, user, chat, "user", "second", a.id)
    await add_message(
        ui.app.services, user, chat, "assistant", "", q2.id, status="error",
        error={"code": "upstream_error", "message": "the model failed", "retryable": True},
    )
    await ui.goto(f"/c/{chat.id}")
    await expect(ui.page.get_by_text("Stopped.")).to_be_visible()
    await expect(ui.page.get_by_role("link", name="Example A")).to_have_attribute("href", "https://example.com/a")
    reasoning = ui.page.locator("details.reasoning")
    await reasoning.locator("summary").click()
    await expect(reasoning).to_contain_text("I should think about this.")
    alert = ui.page.get_by_role("alert")
    await expect(alert).to_contain_text("the model failed")
    await expect(alert.get_by_role("button", name="Retry")).to_be_visible()
