"""JSON from outside (request bodies, uploaded files, form fields): parsed with limits.

`json.loads` alone lets a client choose how deep the parser and everything after it recurse
(`[` x 2000 raised RecursionError, a 500, on every JSON route), accepts `NaN` and `Infinity`
(which no JSON encoder can write back), and raises plain ValueError for an integer longer than
Python's digit limit. Here each of those is a 400 with a stable code, before any other work.
"""

from __future__ import annotations

import json
from typing import Any

from gust.domain.errors import BadRequest

# Deeper than any document Gust reads (a chat export nests about 6 levels, ChatGPT's
# conversations.json about 8) and far below the interpreter's recursion limit.
MAX_JSON_DEPTH = 64


class JsonTooDeep(BadRequest):
    code = "json_too_deep"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(
    data: bytes | str,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    what: str = "request body",
    code: str = "invalid_json",
) -> Any:
    """The value of untrusted JSON text; BadRequest `code` or JsonTooDeep (400) otherwise."""
    try:
        value = json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonTooDeep(f"{what} nests deeper than {max_depth} levels", max_depth=max_depth) from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError is a ValueError too
        raise BadRequest(f"{what} is not valid JSON: {exc}", code=code) from None
    if json_depth(value, stop_after=max_depth) > max_depth:
        raise JsonTooDeep(f"{what} nests deeper than {max_depth} levels", max_depth=max_depth)
    return value


def json_depth(value: Any, *, stop_after: int | None = None) -> int:
    """How deep lists and objects nest in `value` (a scalar is 0, `[]` is 1), without recursion;
    stops counting once past `stop_after`."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if stop_after is not None and deepest > stop_after:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest
