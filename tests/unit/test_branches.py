"""Message trees: the current branch, leaf selection and siblings (gust.domain.branches)."""

from __future__ import annotations

from gust.domain.branches import children_index, current_branch, sibling_ids
from gust.domain.models import Message, Role


def msg(mid: str, parent: str | None, at: float, role: Role = "user") -> Message:
    return Message(id=mid, chat_id="c", user_id="u", role=role, content=mid,
                   status="complete", created_at=at, updated_at=at, parent_id=parent)


def ids(messages: list[Message]) -> list[str]:
    return [m.id for m in messages]


# q1 ── a1 ── q2 ── a2
#   │            └── a2b        (regenerated answer, newer)
#   └─ a1b                      (regenerated first answer)
# q1e ── a1e                    (edited first question: a sibling root, newest of all)
TREE = [
    msg("q1", None, 1),
    msg("a1", "q1", 2, "assistant"),
    msg("q2", "a1", 3),
    msg("a2", "q2", 4, "assistant"),
    msg("a1b", "q1", 5, "assistant"),
    msg("a2b", "q2", 6, "assistant"),
    msg("q1e", None, 7),
    msg("a1e", "q1e", 8, "assistant"),
]


def test_empty_chat_has_an_empty_branch() -> None:
    assert current_branch([]) == []
    assert current_branch([], "anything") == []
    assert sibling_ids([]) == {}


def test_a_linear_chat_is_its_own_branch() -> None:
    chain = [msg("m1", None, 1), msg("m2", "m1", 2), msg("m3", "m2", 3)]
    assert ids(current_branch(chain)) == ["m1", "m2", "m3"]
    assert sibling_ids(chain) == {"m1": ["m1"], "m2": ["m2"], "m3": ["m3"]}


def test_current_branch_ends_at_the_newest_message() -> None:
    assert ids(current_branch(TREE)) == ["q1e", "a1e"]
    assert ids(current_branch(TREE[:6])) == ["q1", "a1", "q2", "a2b"]
    assert ids(current_branch(TREE[:5])) == ["q1", "a1b"]


def test_selecting_a_leaf_shows_its_path() -> None:
    assert ids(current_branch(TREE, "a2")) == ["q1", "a1", "q2", "a2"]
    assert ids(current_branch(TREE, "a1b")) == ["q1", "a1b"]


def test_selecting_an_inner_message_follows_its_newest_continuation() -> None:
    # q1's newest child is a1b (a leaf); a1's only descendant line ends at a2b (newest of a2/a2b).
    assert ids(current_branch(TREE, "q1")) == ["q1", "a1b"]
    assert ids(current_branch(TREE, "a1")) == ["q1", "a1", "q2", "a2b"]
    assert ids(current_branch(TREE, "q1e")) == ["q1e", "a1e"]


def test_an_unknown_leaf_falls_back_to_the_current_branch() -> None:
    assert ids(current_branch(TREE, "missing")) == ["q1e", "a1e"]


def test_siblings_are_listed_oldest_first() -> None:
    siblings = sibling_ids(TREE)
    assert siblings["q1"] == siblings["q1e"] == ["q1", "q1e"]
    assert siblings["a1"] == siblings["a1b"] == ["a1", "a1b"]
    assert siblings["a2"] == siblings["a2b"] == ["a2", "a2b"]
    assert siblings["q2"] == ["q2"]


def test_children_index() -> None:
    children = children_index(TREE)
    assert ids(children[None]) == ["q1", "q1e"]
    assert ids(children["q1"]) == ["a1", "a1b"]
    assert "a2" not in children


def test_equal_timestamps_are_ordered_by_id() -> None:
    same = [msg("b", None, 5), msg("a", None, 5)]
    assert ids(current_branch(same)) == ["b"]  # the larger id is the later one (ids are time-ordered)


def test_a_message_whose_parent_is_missing_starts_the_branch() -> None:
    orphaned = [msg("x2", "gone", 2), msg("x3", "x2", 3)]
    assert ids(current_branch(orphaned)) == ["x2", "x3"]


def test_a_cycle_from_a_corrupt_import_does_not_loop_forever() -> None:
    cyclic = [msg("p", "q", 1), msg("q", "p", 2)]
    branch = current_branch(cyclic)
    assert ids(branch) == ["p", "q"]
    # Selecting a message walks down the children too: that walk must stop as well.
    assert ids(current_branch(cyclic, "p")) == ["p", "q"]
    assert ids(current_branch(cyclic, "q")) == ["q", "p"]
    assert sibling_ids(cyclic) == {"p": ["p"], "q": ["q"]}
