"""Chunking follows structure: pages and sections start passages, sizes stay in bounds."""

from __future__ import annotations

from gust.domain.files import Block
from gust.services.chunking import ChunkingPolicy, Passage, chunk_blocks, estimate_tokens


def sentence(i: int) -> str:
    return f"Sentence number {i} says something about topic {i % 7} in plain words."


DEFAULT = ChunkingPolicy()


def chunks(blocks: list[Block], policy: ChunkingPolicy = DEFAULT) -> list[Passage]:
    return list(chunk_blocks(blocks, policy))


def test_long_prose_becomes_passages_of_300_to_500_tokens_with_overlap() -> None:
    paragraphs = [Block(" ".join(sentence(i * 5 + j) for j in range(5))) for i in range(60)]
    found = chunks(paragraphs)
    sizes = [estimate_tokens(p.text) for p in found]
    assert len(found) > 5
    assert all(size <= 500 + 5 for size in sizes)
    assert all(size >= 300 for size in sizes[:-1])  # only the last may be short
    for previous, current in zip(found, found[1:], strict=False):
        tail_words = previous.text.split()[-5:]
        assert " ".join(tail_words) in current.text  # the overlap repeats the previous end
    assert [p.ordinal for p in found] == list(range(len(found)))


def test_every_word_survives_in_order() -> None:
    blocks = [Block(" ".join(sentence(i * 3 + j) for j in range(3))) for i in range(40)]
    joined = " ".join(p.text for p in chunks(blocks, ChunkingPolicy(overlap_tokens=0)))
    assert joined.split() == " ".join(b.text for b in blocks).split()


def test_a_passage_never_spans_two_pages() -> None:
    blocks = [Block("short text on page one", page=1), Block("short text on page two", page=2)]
    found = chunks(blocks)
    assert [(p.page, p.text) for p in found] == [(1, "short text on page one"), (2, "short text on page two")]


def test_sections_start_passages_once_the_current_one_is_worth_keeping() -> None:
    long = " ".join(sentence(i) for i in range(20))  # > min_tokens
    blocks = [
        Block("Intro", "heading", section="Intro"), Block(long, section="Intro"),
        Block("Usage", "heading", section="Usage"), Block("tiny", section="Usage"),
        Block("Notes", "heading", section="Notes"), Block("also tiny", section="Notes"),
    ]
    found = chunks(blocks)
    assert [p.section for p in found] == ["Intro", "Usage"]
    assert found[1].text == "Usage\n\ntiny\n\nNotes\n\nalso tiny"  # crumbs merge, headings kept


def test_a_huge_block_is_split_at_sentences_then_words_then_characters() -> None:
    huge = " ".join(sentence(i) for i in range(300))
    no_spaces = "x" * 20_000
    found = chunks([Block(huge, section="S"), Block(no_spaces, section="S")])
    assert all(estimate_tokens(p.text) <= 505 for p in found)
    assert all(p.section == "S" for p in found)
    assert sum(p.text.count("x" * 100) for p in found) >= 20_000 // 100 - 5


def test_rows_and_code_split_at_lines() -> None:
    rows = [Block(f"name: item{i}; price: {i}", "row", section="Sheet1") for i in range(400)]
    found = chunks(rows)
    assert len(found) > 2
    for passage in found:
        assert all(line.startswith("name: item") for line in passage.text.split("\n\n"))


def test_cjk_text_counts_a_token_per_character() -> None:
    text = "这是一个关于检索的句子。" * 200
    found = chunks([Block(text)])
    assert len(found) >= 4
    assert estimate_tokens("检索") == 2
