"""Stored sources of any shape (data imported before imports were checked) never break the
chat page or the share page: keyed lists survive repeated or missing numbers (issue 18)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, expect

from tests.e2e.conftest import UI, new_ui
from tests.e2e.seed import add_message, create_chat, user_by_email

BAD_SOURCES: list[tuple[str, Any]] = [
    ("repeated n", [{"n": 1, "url": "https://a.example/", "title": "Alpha"},
                    {"n": 1, "url": "https://b.example/", "title": "Beta"}]),
    ("missing n", [{"url": "https://c.example/", "title": "Gamma"},
                   {"url": "https://d.example/", "title": "Delta"}]),
    ("odd items", [{"n": "x", "url": 42, "title": {"t": 1}},
                   {"n": None, "url": "https://f.example/", "title": "Zeta"},
                   {"n": 2, "url": "javascript:alert(1)", "title": "Eta"}]),
]


async def test_chat_and_share_pages_render_sources_of_any_shape(signed_in: UI, browser: Browser) -> None:
    owner = signed_in
    services = owner.app.services
    user = await user_by_email(services, owner.email or "")
    chat = await create_chat(services, user, "Odd sources")
    parent: str | None = None
    answers = []
    for n, (label, sources) in enumerate(BAD_SOURCES):
        question = await add_message(services, user, chat, "user", f"Question {label}", parent,
                                     created=1e9 + 2 * n)
        answer = await add_message(services, user, chat, "assistant", f"Answer {label}", question.id,
                                   created=1e9 + 2 * n + 1, sources=sources)
        parent = answer.id
        answers.append(answer)

    await owner.goto(f"/c/{chat.id}")
    for answer in answers:
        await expect(owner.page.locator(f'[data-message-id="{answer.id}"]')).to_be_visible()
    sources = owner.page.locator(f'[data-message-id="{answers[0].id}"] .sources li')
    await expect(sources).to_have_count(2)
    await expect(sources.nth(1)).to_have_text("Beta")
    await expect(owner.page.locator(f'[data-message-id="{answers[1].id}"] .sources li')).to_have_count(2)
    assert owner.watch.errors == []

    assert owner.api is not None
    share = await owner.api.post(f"/api/chats/{chat.id}/share")
    assert share.status in (200, 201), share.text
    anonymous = await new_ui(browser, owner.app)
    try:
        await anonymous.goto(f"/s/{share.json['id']}")
        await expect(anonymous.page.get_by_role("heading", name="Odd sources")).to_be_visible()
        await expect(anonymous.page.locator("article.assistant")).to_have_count(len(BAD_SOURCES))
        first = anonymous.page.locator("article.assistant").first
        await expect(first.locator(".sources li")).to_have_count(2)
        assert anonymous.watch.errors == []
    finally:
        await anonymous.context.close()
