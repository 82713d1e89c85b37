"""Chats and messages written straight into the real store, for browser tests and the bench."""

from __future__ import annotations

from typing import Any

from gust.domain.ids import new_id, now
from gust.domain.models import Chat, Message, Role, User
from gust.services.registry import Services

XSS_ANSWER = "\n\n".join(
    [
        "Here are some dangerous things, rendered inert:",
        "An image: <img src=x onerror=alert(1)>",
        "A [javascript link](javascript:alert(2)) and an autolink <javascript:alert(3)>.",
        "<script>alert(4)</script>",
        '<a href="javascript:alert(5)" onclick="alert(6)">raw anchor</a>',
        "<svg onload=alert(7)><circle r=10 /></svg>",
        "```html\n<script>alert(8)</script>\n```",
        "[a data URL](data:text/html;base64,PHNjcmlwdD5hbGVydCg5KTwvc2NyaXB0Pg==)",
    ]
)

LONG_ANSWER = """Here is a longer answer with **markdown**, a list and code.

- first point with `inline code`
- second point, a [link](https://example.com/docs)

```python
def fibonacci(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
```

And a closing paragraph that wraps over a couple of lines so that messages have varied heights
in the list, as they do in real chats."""


async def user_by_email(services: Services, email: str) -> User:
    user = await services.store.get_user_by_email(email)
    assert user is not None, email
    return user


async def create_chat(services: Services, user: User, title: str, **fields: Any) -> Chat:
    return await services.chats.create_chat(user, title=title, **fields)


async def add_message(
    services: Services,
    user: User,
    chat: Chat,
    role: Role,
    content: str,
    parent_id: str | None,
    *,
    created: float | None = None,
    **fields: Any,
) -> Message:
    at = created if created is not None else now()
    message = Message(
        id=new_id(),
        chat_id=chat.id,
        user_id=user.id,
        team_id=user.team_id,
        role=role,
        content=content,
        status=fields.pop("status", "complete"),
        created_at=at,
        updated_at=at,
        parent_id=parent_id,
        **fields,
    )
    await services.store.create_message(message)
    return message


async def seed_conversation(
    services: Services, user: User, title: str, pairs: list[tuple[str, str]]
) -> tuple[Chat, list[Message]]:
    """A chat with question/answer pairs on one branch, oldest first."""
    chat = await create_chat(services, user, title)
    messages: list[Message] = []
    parent: str | None = None
    start = now() - len(pairs) * 2
    for i, (question, answer) in enumerate(pairs):
        q = await add_message(services, user, chat, "user", question, parent, created=start + 2 * i)
        a = await add_message(services, user, chat, "assistant", answer, q.id, created=start + 2 * i + 1)
        messages += [q, a]
        parent = a.id
    return chat, messages


async def seed_long_chat(services: Services, user: User, count: int = 1000) -> tuple[Chat, list[Message]]:
    """`count` messages of varied length (short lines, paragraphs, code) on one branch."""
    pairs = []
    for i in range(count // 2):
        question = f"Question {i}: how does step {i} work?"
        if i % 3 == 0:
            question = f"Question {i}: explain it in detail, please."
        if i % 4 == 0:
            answer = f"Answer {i}.\n\n" + LONG_ANSWER
        elif i % 4 == 1:
            answer = f"Answer {i}: short and sweet."
        else:
            answer = f"Answer {i}: " + " ".join(["A medium-length paragraph of words."] * 6)
        pairs.append((question, answer))
    return await seed_conversation(services, user, "A very long chat", pairs)


# requestAnimationFrame sampling while the list scrolls by a fixed step each frame: the
# frame rate the reader would see, including the list's re-rendering work on each scroll.
SCROLL_FPS_JS = """
async ({step, seconds}) => {
  const scroller = document.querySelector('.scroller');
  scroller.scrollTop = scroller.scrollHeight;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  const times = [];
  let direction = -1;
  const start = performance.now();
  await new Promise(resolve => {
    function frame(t) {
      times.push(t);
      if (scroller.scrollTop <= 0) direction = 1;
      else if (scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 1) direction = -1;
      scroller.scrollTop += direction * step;
      if (t - start < seconds * 1000) requestAnimationFrame(frame); else resolve();
    }
    requestAnimationFrame(frame);
  });
  const gaps = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
  const elapsed = (times[times.length - 1] - times[0]) / 1000;
  return {
    frames: times.length,
    seconds: elapsed,
    fps: (times.length - 1) / elapsed,
    p50_ms: gaps[Math.floor(gaps.length * 0.5)],
    p95_ms: gaps[Math.floor(gaps.length * 0.95)],
    max_ms: gaps[gaps.length - 1],
    long_frames: gaps.filter(g => g > 50).length,
    elements_in_list: scroller.getElementsByTagName('*').length,
  };
}
"""
