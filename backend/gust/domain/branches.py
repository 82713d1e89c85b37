"""Message trees: edit = new sibling user message, regenerate = new sibling assistant message."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from gust.domain.models import Message


def children_index(messages: Sequence[Message]) -> dict[str | None, list[Message]]:
    """Children of each message id (None = roots), oldest first (input is oldest first)."""
    children: dict[str | None, list[Message]] = defaultdict(list)
    for message in messages:
        children[message.parent_id].append(message)
    return children


def current_branch(messages: Sequence[Message], leaf_id: str | None = None) -> list[Message]:
    """The path from the root to a leaf, oldest first.

    Without `leaf_id` the leaf is the most recently created message (always a leaf:
    children are created after their parents). With `leaf_id` naming any message, the
    branch runs through it down to its most recent descendant, so selecting a sibling
    shows that sibling's latest continuation.
    """
    if not messages:
        return []
    by_id = {m.id: m for m in messages}
    children = children_index(messages)
    if leaf_id is not None and leaf_id in by_id:
        leaf = by_id[leaf_id]
        descended = {leaf.id}
        while children.get(leaf.id):
            child = max(children[leaf.id], key=lambda m: (m.created_at, m.id))
            if child.id in descended:  # a cycle (corrupt import): stop here
                break
            descended.add(child.id)
            leaf = child
    else:
        leaf = max(messages, key=lambda m: (m.created_at, m.id))
    path = [leaf]
    seen = {leaf.id}
    while path[-1].parent_id is not None and path[-1].parent_id in by_id:
        parent = by_id[path[-1].parent_id]
        if parent.id in seen:  # a cycle can only come from a corrupt import; stop safely
            break
        seen.add(parent.id)
        path.append(parent)
    path.reverse()
    return path


def sibling_ids(messages: Sequence[Message]) -> dict[str, list[str]]:
    """For every message, the ids of it and its siblings (same parent), oldest first."""
    children = children_index(messages)
    return {m.id: [s.id for s in children[m.parent_id]] for m in messages}


def path_to(messages: Sequence[Message], leaf_id: str | None) -> list[Message]:
    """The messages from the root down to `leaf_id`, oldest first ([] for None)."""
    if leaf_id is None:
        return []
    by_id = {m.id: m for m in messages}
    path: list[Message] = []
    current = by_id.get(leaf_id)
    while current is not None and len(path) <= len(messages):
        path.append(current)
        current = by_id.get(current.parent_id) if current.parent_id else None
    path.reverse()
    return path
