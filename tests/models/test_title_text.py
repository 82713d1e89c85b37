"""Title rules without a model: cutting at a word, titles from a first message, and which
model replies count as titles."""

from __future__ import annotations

import pytest

from gust.services.generation import provisional_title
from gust.services.title_text import acceptable_title, shorten, title_from_message


def test_shorten_cuts_at_a_word_with_an_ellipsis() -> None:
    assert shorten("  short   title ") == "short title"
    text = "Could you help me plan a three day trip to Paris in the spring, with museums?"
    cut = shorten(text)
    assert cut == "Could you help me plan a three day trip to Paris in the…"
    assert len(cut) <= 60 and text.startswith(cut[:-1])
    assert shorten("word, " * 20, 20) == "word, word, word…"
    # One very long word is cut inside it (rather than dropped entirely).
    assert shorten("x" * 100, 10) == "x" * 9 + "…"
    assert provisional_title(text) == cut  # the provisional title follows the same rule
    assert provisional_title("   ") == "New chat"


@pytest.mark.parametrize(
    ("message", "title"),
    [
        ("Could you help me plan a trip to Paris?", "Help me plan a trip to Paris"),
        ("hi! can you please explain **Python decorators**? I keep failing.", "Explain Python decorators"),
        ("How do I reverse a list in Rust", "How do I reverse a list in Rust"),
        ("```\nTraceback (most recent call last)\n```", "Traceback (most recent call last)"),
        ("please", "Please"),
        ("   ", ""),
        ("Write a very long story about a dragon who learns to cook pasta in a tiny Italian village",
         "Write a very long story about a dragon who learns to cook…"),
    ],
)
def test_title_from_a_first_message(message: str, title: str) -> None:
    assert title_from_message(message) == title


@pytest.mark.parametrize(
    ("title", "ok"),
    [
        ("Paris spring trip", True),
        ("Python decorators explained", True),
        ("python", False),  # one word names no topic
        ("Question", False),
        ("New conversation", False),  # only generic words
        ("Question about help", False),
        ("Sure, here is a plan", False),  # where the answer starts: the model answered again
        ("one two three four five six seven eight nine", False),
        ("x" * 61 + " y", False),
    ],
)
def test_which_replies_are_titles(title: str, ok: bool) -> None:
    answer = "Sure, here is a plan for three days in Paris: day one, the Louvre..."
    assert acceptable_title(title, answer) is ok
