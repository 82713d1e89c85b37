"""History trimming: the system prompt always, then the newest turns that fit the model's window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gust.domain.models import Message, Role
from gust.services.context import FRAMING_TOKENS, build_messages, estimate_tokens
from tests.streaming.helpers import stream
from tests.support.fake_upstream import FakeUpstream, Script
from tests.support.plugin import StartApp

SYSTEM = "You are a careful assistant."


def turn(i: int) -> str:
    """A ~400-character question, about 106 estimated tokens."""
    return f"question {i}: " + "lorem ipsum " * 33


def message(role: Role, content: str, i: int) -> Message:
    return Message(
        id=f"m{i}", chat_id="c", user_id="u", role=role, content=content,
        status="complete", created_at=i, updated_at=i,
    )


# -- the estimate ---------------------------------------------------------------------------------
def test_estimate_is_four_latin_characters_or_one_cjk_character_per_token() -> None:
    assert estimate_tokens("") == FRAMING_TOKENS
    assert estimate_tokens("abcd" * 10) == 10 + FRAMING_TOKENS
    assert estimate_tokens("abcde") == 2 + FRAMING_TOKENS  # rounded up
    assert estimate_tokens("你好世界") == 4 + FRAMING_TOKENS


def test_a_newest_message_longer_than_the_window_keeps_its_end() -> None:
    long = "start " + "x" * 4000 + " the actual question?"
    built = build_messages(SYSTEM, [message("user", long, 1)], context_window=512, max_tokens=128)
    assert built[0] == {"role": "system", "content": SYSTEM}
    kept = built[1]["content"]
    assert long.endswith(kept) and kept.endswith("the actual question?") and len(kept) < len(long)
    assert estimate_tokens(SYSTEM) + estimate_tokens(kept) <= 512 - 128


def test_cjk_text_is_cut_by_its_own_estimate() -> None:
    long = "问" * 2000
    built = build_messages(None, [message("user", long, 1)], context_window=512, max_tokens=128)
    assert estimate_tokens(built[0]["content"]) <= 384 and len(built[0]["content"]) > 300


def test_untrimmed_history_is_sent_whole() -> None:
    history = [message("user", "hi", 1), message("assistant", "hello", 2), message("user", "bye", 3)]
    built = build_messages(None, history, context_window=8192, max_tokens=1024)
    assert [m["content"] for m in built] == ["hi", "hello", "bye"]


# -- through the app: the fake upstream records what it was sent ------------------------------------
@pytest.mark.parametrize("where", ["chat", "default"])
async def test_tiny_window_keeps_the_system_prompt_and_the_newest_turns(
    start_stream_app: StartApp,
    upstream: FakeUpstream,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    where: str,
) -> None:
    models = tmp_path / "tiny"
    models.mkdir()
    overrides: dict[str, Any] = {
        "models_file": upstream.models_file(models, ["tiny"], context_window=512, max_output_tokens=128)
    }
    if where == "default":
        overrides["default_system_prompt"] = SYSTEM
    app = await start_stream_app(**overrides)
    user = await app.sign_up(http, "trim@example.com")
    upstream.script = Script(tokens=["ok"])
    first = await stream(user, {"message": turn(1)})
    chat_id = first[0].data["chat_id"]
    if where == "chat":
        resp = await user.patch(f"/api/chats/{chat_id}", {"system_prompt": SYSTEM})
        assert resp.status == 200, resp.text
    for i in range(2, 6):
        events = await stream(user, {"chat_id": chat_id, "message": turn(i)})
        assert events[-1].data["status"] == "complete"
    sent = upstream.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": SYSTEM}
    assert sent[-1] == {"role": "user", "content": turn(5)}
    # Budget: 512 - 128 (answer) - 11 (system) = 373 tokens; a question costs 106, an answer 5.
    # Newest first: q5, a4, q4, a3, q3 fit (338); a2 would fit but q2 does not, and a trimmed
    # conversation starts with a question.
    assert sent[1:] == [
        {"role": "user", "content": turn(3)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": turn(4)},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": turn(5)},
    ]
    assert sum(estimate_tokens(m["content"]) for m in sent) <= 512 - 128
    assert upstream.requests[-1]["max_tokens"] == 128
    # An earlier request, still within the window, carried the whole conversation.
    second = upstream.requests[1]["messages"]
    assert [m["content"] for m in second if m["role"] == "user"] == [turn(1), turn(2)]
