"""Title text rules, without any model: cutting at a word, a title made from the first
message, and what a model's reply must be to count as a title.

A model's title is kept only when it is:
- 2 to MAX_WORDS words and at most MAX_CHARS characters (one word — "python", "Question" —
  names no topic; a long reply is the model answering instead);
- not made only of generic words ("Chat", "New conversation", "Question about help");
- not the answer: it must not be where the answer starts, and must not repeat the answer's
  opening words.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"
MAX_WORDS = 8
MAX_CHARS = 60
GENERIC = frozenset(
    "a an the and or of about for on in to with my your this that some new "
    "chat conversation question questions help request query topic title untitled answer "
    "hello hi hey thanks thank you please assistant user discussion inquiry general misc".split()
)
_MARKUP = re.compile(r"[`*_#>\[\]]+|!\[|\]\([^)]*\)")
_POLITE = re.compile(
    r"^(?:(?:hi|hello|hey|ok|okay|so|please|pls)\b[\s,!.]*)*"
    r"(?:(?:can|could|would|will) you(?: please)?|please|i (?:want|need|would like) you to|help me)?\s+",
    re.IGNORECASE,
)
_GREETING = re.compile(r"^(?:(?:hi|hello|hey)(?: there)?\b[\s,!.]*)+", re.IGNORECASE)
_WORD = re.compile(r"[\w'’-]+", re.UNICODE)


def shorten(text: str, limit: int = MAX_CHARS) -> str:
    """One line of at most `limit` characters, cut at a word boundary with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit // 2:  # a very long first word is cut inside it rather than dropped
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + ELLIPSIS


def title_from_message(text: str) -> str:
    """A title from a first message, with no model: its first sentence without greetings or
    "can you", markup, and final punctuation; capitalised; cut at a word."""
    plain = _MARKUP.sub(" ", text)
    first = next((line.strip() for line in plain.splitlines() if line.strip()), "")
    first = _GREETING.sub("", first).strip() or first
    sentence = re.split(r"(?<=[.!?。！？])\s", first, maxsplit=1)[0]
    trimmed = _POLITE.sub("", sentence + " ", count=1).strip() or sentence
    trimmed = trimmed.rstrip(" .!?。！？:;,")
    if not trimmed:
        return ""
    return shorten(trimmed[0].upper() + trimmed[1:])


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def acceptable_title(title: str, answer: str) -> bool:
    """Whether a model's (cleaned) reply is a title by the rules above."""
    words = _words(title)
    if not 2 <= len(words) <= MAX_WORDS or len(title) > MAX_CHARS:
        return False
    if all(w in GENERIC for w in words):
        return False
    opening = _words(answer)[: len(words) + 3]
    return " ".join(words) not in " ".join(opening)
