"""Building the prompt: system prompt + the current branch, trimmed to the context window.

Token counts are estimated, not tokenised: about 4 characters per token for Latin
text and 1 token per character for CJK, plus 4 tokens of framing per message. It errs
on the high side so a trimmed prompt fits the provider's real window.

Trimming drops whole turns, oldest first; a trimmed conversation starts with a user
turn; a newest message that alone exceeds the budget keeps its end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gust.domain.models import Message

FRAMING_TOKENS = 4


def estimate_tokens(text: str) -> int:
    wide = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return (len(text) - wide + 3) // 4 + wide + FRAMING_TOKENS


def build_messages(
    system_prompt: str | None,
    history: Sequence[Message],
    *,
    context_window: int,
    max_tokens: int,
) -> list[dict[str, Any]]:
    """Provider messages: the system prompt always, then the newest turns that fit."""
    budget = context_window - max_tokens
    system: list[dict[str, Any]] = []
    if system_prompt:
        system = [{"role": "system", "content": system_prompt}]
        budget -= estimate_tokens(system_prompt)
    kept: list[dict[str, Any]] = []
    trimmed = False
    for message in reversed(history):
        if message.role not in ("user", "assistant", "system") or not message.content:
            continue
        cost = estimate_tokens(message.content)
        if cost > budget and kept:
            trimmed = True
            break
        if cost > budget:
            # Even the newest message alone is too long: keep its end, which is what was asked.
            kept.append({"role": message.role, "content": _tail_within(message.content, budget)})
            trimmed = True
            break
        budget -= cost
        kept.append({"role": message.role, "content": message.content})
    kept.reverse()
    while trimmed and len(kept) > 1 and kept[0]["role"] == "assistant":
        kept.pop(0)  # a trimmed conversation starts with a question, as providers expect
    return system + kept


def _tail_within(text: str, budget: int) -> str:
    """The longest end of `text` whose estimate fits `budget` (binary search on its length)."""
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if estimate_tokens(text[-mid:]) <= budget:
            low = mid
        else:
            high = mid - 1
    return text[-low:] if low else ""
