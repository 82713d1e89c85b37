"""Ids: 26 Crockford base32 digits of time + randomness, sorting in creation order."""

from __future__ import annotations

import time

from gust.domain.ids import new_id

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + ALPHABET.index(char)
    return value


def test_ids_carry_the_time_and_sort_in_creation_order() -> None:
    before = int(time.time() * 1000)
    made = [new_id() for _ in range(5000)]
    after = int(time.time() * 1000)
    assert len(set(made)) == len(made)
    assert made == sorted(made)
    for text in made[:: 250]:
        assert len(text) == 26 and set(text) <= set(ALPHABET)
        value = decode(text)
        assert value < 1 << 130
        assert before <= value >> 80 <= after


def test_ids_made_in_one_millisecond_count_up() -> None:
    made = [decode(new_id()) for _ in range(200)]
    steps = [b - a for a, b in zip(made, made[1:], strict=False) if a >> 80 == b >> 80]
    assert steps and all(step == 1 for step in steps)
