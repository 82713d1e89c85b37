"""Building the prompt: system prompt + the current branch, trimmed to the context window.

Token counts are estimated, not tokenised: about 4 characters per token for Latin
text and 1 token per character for CJK, plus 4 tokens of framing per message. It errs
on the high side so a trimmed prompt fits the provider's real window.
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
    for message in reversed(history):
        if message.role not in ("user", "assistant", "system") or not message.content:
            continue
        cost = estimate_tokens(message.content)
        if cost > budget and kept:
            break
        if cost > budget:
            # Even the newest message alone is too long: keep its end, which is what was asked.
            chars = max(0, budget - FRAMING_TOKENS) * 4
            kept.append({"role": message.role, "content": message.content[-chars:] if chars else ""})
            break
        budget -= cost
        kept.append({"role": message.role, "content": message.content})
    kept.reverse()
    return system + kept
