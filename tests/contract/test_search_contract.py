"""The SearchIndex contract: every test runs on SQLite FTS5, and on Meilisearch when
TEST_MEILISEARCH_URL names a server."""

from __future__ import annotations

import os
import unicodedata
import uuid
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path

import pytest

from gust.adapters.search.meili import MeilisearchIndex
from gust.adapters.search.sqlite_fts import SQLiteSearchIndex
from gust.domain.ids import new_id
from gust.domain.models import Chat, Message, Role
from gust.ports.search import DocRef, IndexDocument, SearchIndex
from gust.services.search import chat_document, message_document
from tests.support.env import require_env


@pytest.fixture(params=["sqlite-fts5", "meilisearch"])
async def index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SearchIndex]:
    if request.param == "sqlite-fts5":
        fts = SQLiteSearchIndex(tmp_path / "search.db", users_per_shard=2)  # users span shards
        await fts.start()
        yield fts
        await fts.close()
        return
    url = require_env("TEST_MEILISEARCH_URL", "a Meilisearch server")
    meili = MeilisearchIndex(url, os.environ.get("TEST_MEILISEARCH_KEY"),
                             index_uid=f"gust_test_{uuid.uuid4().hex[:12]}")
    await meili.start()
    yield meili
    await meili.client.delete_index_if_exists(meili.index_uid)
    await meili.close()


def chat(user: str, title: str, chat_id: str | None = None, updated_at: float = 100.0) -> Chat:
    return Chat(id=chat_id or new_id(), user_id=user, team_id="t1", title=title, model=None,
                created_at=1.0, updated_at=updated_at)


def msg(c: Chat, content: str, role: Role = "user", created_at: float = 10.0) -> Message:
    return Message(id=new_id(), chat_id=c.id, user_id=c.user_id, role=role,
                   content=content, status="complete", created_at=created_at, updated_at=created_at,
                   team_id=c.team_id)


def docs(*records: Chat | Message) -> list[IndexDocument]:
    return [chat_document(r) if isinstance(r, Chat) else message_document(r) for r in records]


async def ids(index: SearchIndex, user: str, query: str, **kw: object) -> list[str]:
    page = await index.search(user, query, limit=50, **kw)  # type: ignore[arg-type]
    return [h.doc_id for h in page.hits]


async def test_each_user_finds_only_their_own_documents(index: SearchIndex) -> None:
    a_chat, b_chat = chat("alice", "Weather"), chat("bob", "Weather")
    a_msg, b_msg = msg(a_chat, "the tornado season starts"), msg(b_chat, "a tornado hit the barn")
    await index.upsert(docs(a_chat, b_chat, a_msg, b_msg))
    assert await ids(index, "alice", "tornado") == [f"m_{a_msg.id}"]
    assert await ids(index, "bob", "tornado") == [f"m_{b_msg.id}"]
    assert await ids(index, "carol", "tornado") == []
    assert sorted(await ids(index, "alice", "weather")) == [f"c_{a_chat.id}"]


async def test_diacritics_prefix_and_typo(index: SearchIndex) -> None:
    c = chat("alice", "Storms")
    m = msg(c, "A Tornádo crossed the plains")
    await index.upsert(docs(c, m))
    expected = [f"m_{m.id}"]
    assert await ids(index, "alice", "tornado") == expected  # diacritics-insensitive
    assert await ids(index, "alice", "TORNÁDO") == expected
    assert await ids(index, "alice", "torn") == expected  # the last word is a prefix
    assert await ids(index, "alice", "tornado plains") == expected
    assert await ids(index, "alice", "tornafo") == expected  # one typo in a long word
    assert await ids(index, "alice", "hurricane") == []


async def test_snippets_highlight_matches_and_escape_html(index: SearchIndex) -> None:
    c = chat("alice", "Code <b>review</b>")
    m = msg(c, 'Use <script>alert("x")</script> & the tornado API')
    await index.upsert(docs(c, m))
    page = await index.search("alice", "tornado", limit=10)
    assert len(page.hits) == 1
    snippet = page.hits[0].snippet
    assert "<mark>tornado</mark>" in snippet
    assert "&lt;script&gt;" in snippet and "<script>" not in snippet
    assert "&amp;" in snippet
    title_hit = (await index.search("alice", "review", limit=10)).hits[0]
    assert title_hit.kind == "chat" and title_hit.message_id is None and title_hit.role is None
    assert title_hit.snippet == "Code &lt;b&gt;<mark>review</mark>&lt;/b&gt;"


async def test_long_text_is_cropped_around_the_match(index: SearchIndex) -> None:
    c = chat("alice", "Notes")
    filler = " ".join(f"word{i}" for i in range(300))
    m = msg(c, f"{filler} needle {filler}")
    await index.upsert(docs(c, m))
    snippet = (await index.search("alice", "needle", limit=5)).hits[0].snippet
    assert "<mark>needle</mark>" in snippet
    assert len(snippet) < 600 and "…" in snippet


async def test_titles_rank_above_message_text(index: SearchIndex) -> None:
    titled = chat("alice", "Gardening")
    other = chat("alice", "Misc")
    body = msg(other, "some notes about gardening and other things in the spring")
    await index.upsert(docs(titled, other, body))
    assert await ids(index, "alice", "gardening") == [f"c_{titled.id}", f"m_{body.id}"]


async def test_filters_by_chat_and_role(index: SearchIndex) -> None:
    one, two = chat("alice", "One"), chat("alice", "Two")
    asked = msg(one, "pasta recipe please", role="user")
    answered = msg(one, "a pasta recipe follows", role="assistant")
    elsewhere = msg(two, "pasta again", role="user")
    await index.upsert(docs(one, two, asked, answered, elsewhere))
    assert sorted(await ids(index, "alice", "pasta", chat_id=one.id)) == sorted(
        [f"m_{asked.id}", f"m_{answered.id}"]
    )
    assert await ids(index, "alice", "pasta", chat_id=one.id, role="assistant") == [f"m_{answered.id}"]
    assert sorted(await ids(index, "alice", "pasta", role="user")) == sorted(
        [f"m_{asked.id}", f"m_{elsewhere.id}"]
    )
    hit = (await index.search("alice", "pasta", limit=5, role="assistant")).hits[0]
    assert (hit.chat_id, hit.message_id, hit.role, hit.created_at) == (one.id, answered.id, "assistant", 10.0)


async def test_pages_and_total(index: SearchIndex) -> None:
    c = chat("alice", "Many")
    messages = [msg(c, f"apple number {i}", created_at=float(i)) for i in range(12)]
    await index.upsert(docs(c, *messages))
    first = await index.search("alice", "apple", limit=5)
    second = await index.search("alice", "apple", limit=5, offset=5)
    third = await index.search("alice", "apple", limit=5, offset=10)
    assert first.total_estimate == 12
    seen = [h.doc_id for h in first.hits + second.hits + third.hits]
    assert len(seen) == 12 and len(set(seen)) == 12


async def test_upsert_replaces_and_delete_removes(index: SearchIndex) -> None:
    c = chat("alice", "Edits")
    m = msg(c, "original words")
    await index.upsert(docs(c, m))
    m.content = "replacement text"
    await index.upsert(docs(m))
    assert await ids(index, "alice", "original") == []
    assert await ids(index, "alice", "replacement") == [f"m_{m.id}"]
    await index.delete([f"m_{m.id}", "m_unknown"])
    assert await ids(index, "alice", "replacement") == []
    assert await index.count("alice") == 1


async def test_delete_chat_documents_is_scoped_to_the_user(index: SearchIndex) -> None:
    gone, kept = chat("alice", "Gone zebra"), chat("alice", "Kept zebra")
    others = chat("bob", "Bob zebra")
    await index.upsert(docs(gone, kept, others, msg(gone, "zebra one"), msg(kept, "zebra two"),
                            msg(others, "zebra three")))
    await index.delete_chat_documents("bob", [gone.id])  # not bob's chat: nothing happens
    assert await index.count("alice") == 4
    await index.delete_chat_documents("alice", [gone.id])
    assert await index.count("alice") == 2
    assert {h.chat_id for h in (await index.search("alice", "zebra", limit=10)).hits} == {kept.id}
    assert await index.count("bob") == 2
    assert await index.count() == 4


async def test_fingerprints_and_prune(index: SearchIndex) -> None:
    c = chat("alice", "Prune")
    messages = [msg(c, f"text {i}") for i in range(7)]
    all_docs = docs(c, *messages)
    await index.upsert(all_docs)
    held = await index.fingerprints([d.id for d in all_docs] + ["m_missing"])
    assert held == {d.id: d.fingerprint for d in all_docs}
    doomed = {f"m_{messages[1].id}", f"m_{messages[5].id}"}
    seen: list[str] = []

    async def orphans(refs: Sequence[DocRef]) -> Collection[str]:
        assert len(refs) <= 3
        seen.extend(r.id for r in refs)
        for ref in refs:
            assert ref.user_id == "alice" and ref.chat_id == c.id
            assert (ref.kind == "chat") == (ref.message_id is None)
        return [r.id for r in refs if r.id in doomed]

    assert await index.prune(orphans, batch_size=3) == 2
    assert sorted(seen) == sorted(d.id for d in all_docs)  # every document visited once
    assert await index.count("alice") == 6
    assert set(await index.fingerprints(list(doomed))) == set()


async def test_queries_are_words_not_syntax(index: SearchIndex) -> None:
    c = chat("alice", "Syntax")
    m = msg(c, "C++ and NEAR operators: a OR b")
    await index.upsert(docs(c, m))
    for query in ['"', "NEAR(", "a OR", "*", "c++ (", "-near", "col:umn", "'; DROP TABLE x; --", "^"]:
        await index.search("alice", query, limit=5)  # never an error
    assert await ids(index, "alice", "operators") == [f"m_{m.id}"]


async def test_ping(index: SearchIndex) -> None:
    await index.ping()


# Characters SQLite FTS5's unicode61 tokenizer splits words on, each of which Meilisearch kept
# inside a word unless told otherwise (`<`, `>`, no-break spaces, arrows, emoji...), next to
# some it always split on. A word glued to its neighbour by any of them is still found.
SEPARATORS = [
    *"<>$=^|~+&#@%*/\\`_'\"!?.,:;()[]{}-",
    "\u00a0", "©", "®", "°", "£", "¥", "¢", "¬", "±", "×", "÷", "§", "¶", "«", "»", "¦", "¨", "´",
    "\u2009", "\u202f", "\u2011", "\u2028", "—", "…", "•", "‰", "€", "™", "℃", "№",
    "→", "⇒", "↔", "≤", "≥", "≠", "∞", "√", "⌘", "〈", "├", "─", "│", "■", "▶", "●",
    "☀", "★", "♥", "✓", "✅", "\u3000", "、", "。", "「", "」", "😀", "🎉", "👍", "🚀",
]


def _word(i: int, side: str) -> str:
    letters = ""
    i += 26 * 26  # three letters each: no word is a prefix of another
    while i:
        letters = chr(ord("a") + i % 26) + letters
        i //= 26
    return f"{side}{letters}"


async def test_words_split_on_every_separator_character(index: SearchIndex) -> None:
    c = chat("alice", "Separators")
    glued = [msg(c, f"{_word(i, 'left')}{sep}{_word(i, 'right')}") for i, sep in enumerate(SEPARATORS)]
    await index.upsert(docs(c, *glued))
    missed = []
    for i, sep in enumerate(SEPARATORS):
        for side in ("left", "right"):
            found = await ids(index, "alice", _word(i, side))
            if found[:1] != [f"m_{glued[i].id}"]:  # first: words one typo away match after it
                missed.append(f"U+{ord(sep):04X} {unicodedata.name(sep, '?')} ({side} word)")
    assert missed == []


async def test_html_title_words_are_found_and_highlighted(index: SearchIndex) -> None:
    c = chat("alice", "Code <b>review</b> of <em>parser</em>&amp;lexer")
    await index.upsert(docs(c))
    for word in ("review", "parser", "lexer", "code"):
        page = await index.search("alice", word, limit=5)
        assert [h.doc_id for h in page.hits] == [f"c_{c.id}"], word
        assert f"<mark>{word}</mark>" in page.hits[0].snippet.lower(), page.hits[0].snippet
