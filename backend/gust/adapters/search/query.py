"""User text to an FTS5 query: words only (no operators), the last word as a prefix."""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass

MAX_TERMS = 16
MIN_PREFIX = 2  # "a*" would read half the index
MIN_TYPO = 5  # as Meilisearch: one typo allowed from five letters on
MAX_TYPO = 24  # longer "words" (hashes, URLs) are not misspellings worth ~2,000 lookups
MAX_TYPO_TERMS = 4
# Letters and digits, as FTS5's unicode61 tokenizer sees words (underscore separates).
_WORD = re.compile(r"[^\W_]+")
_ALPHABET = frozenset(string.ascii_lowercase + string.digits)


def normalize(word: str) -> str:
    """Lower case without diacritics, as the index stores terms (remove_diacritics 2)."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True, slots=True)
class FtsQuery:
    terms: tuple[str, ...]
    prefix_last: bool

    @property
    def typo_terms(self) -> tuple[str, ...]:
        return tuple(t for t in self.terms if MIN_TYPO <= len(t) <= MAX_TYPO)[:MAX_TYPO_TERMS]

    @property
    def expression(self) -> str:
        return self.with_alternatives({})

    def with_alternatives(self, fixes: dict[str, list[str]]) -> str:
        """The MATCH expression, each term OR'ed with the given alternative spellings."""
        parts = []
        for i, term in enumerate(self.terms):
            phrase = f'"{term}"'
            if self.prefix_last and i == len(self.terms) - 1:
                phrase += "*"
            alternatives = [f'"{alt}"' for alt in fixes.get(term, []) if alt != term]
            parts.append(f"({' OR '.join([phrase, *alternatives])})" if alternatives else phrase)
        return " AND ".join(parts)


def build_fts_query(text: str) -> FtsQuery | None:
    """The words of `text` as a query every word of which must match; None without words."""
    terms = tuple(_WORD.findall(normalize(text))[:MAX_TERMS])
    if not terms:
        return None
    return FtsQuery(terms=terms, prefix_last=len(terms[-1]) >= MIN_PREFIX)


def typo_variants(term: str) -> set[str]:
    """Every spelling one edit away: a letter deleted, swapped, replaced or inserted."""
    letters = sorted(_ALPHABET | set(term))
    splits = [(term[:i], term[i:]) for i in range(len(term) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in letters}
    inserts = {a + c + b for a, b in splits for c in letters}
    return (deletes | swaps | replaces | inserts) - {term, ""}
