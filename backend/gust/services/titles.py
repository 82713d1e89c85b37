"""Chat titles, set in the background after a chat's first complete exchange.

A new chat is titled at once with the start of its first message (the provisional title,
generation.provisional_title). After the first answer completes — never while a model is
answering — this service titles it, and stores the title only while the chat still has its
provisional title (a title the user typed meanwhile wins):
- when the titling model (TITLE_MODEL if set, else the model that answered) is the bundled
  local model, from the first message by rules, without a model call: the one local model
  answers one request at a time, and a title request would delay the next answer;
- otherwise by asking that model (a non-streaming call), keeping its reply only when it is
  a title by title_text.acceptable_title (2-8 words, not generic, not the answer).
Webhook models (agents) are never asked; their chats keep the provisional title. Failures
and rejected replies are logged and leave the title as it is. Later exchanges never retitle
a chat. A stored title is announced to the user's connections (`title` on /api/events).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable

from gust.domain.errors import UpstreamError
from gust.domain.events import TitleEventOut, title_event
from gust.domain.models import Chat, Message, User
from gust.ports.completion import Completer
from gust.ports.llm import ChatRequest
from gust.ports.store import Store
from gust.services.chats import DEFAULT_TITLE, MAX_TITLE
from gust.services.generation import provisional_title
from gust.services.models import ModelRegistry, ModelsFileError, ModelSpec
from gust.services.title_text import acceptable_title, shorten, title_from_message

log = logging.getLogger(__name__)

MAX_WORDS_HINT = 6
MAX_WORDS = 12  # a longer reply is not a title (tiny models continue the answer instead)
MAX_CHARS = 80
EXCERPT_CHARS = 1500  # of the question and of the answer: enough to name the topic
INSTRUCTION = (
    "You write titles for chat conversations. Reply with one title of at most "
    f"{MAX_WORDS_HINT} words that names the topic, in the language of the conversation. "
    "No quotes, no final punctuation, nothing else."
)

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_PREFIX = re.compile(r"^(title|titre|titel|título|标题)\s*[:：]\s*", re.IGNORECASE)
_EDGES = "\"'`“”‘’«»*#_ \t"


def clean_title(raw: str) -> str:
    """The title in a model's reply: first real line, no quotes, label or final punctuation.

    Empty when the reply is not a short title (more than MAX_WORDS words or MAX_CHARS
    characters): a sentence cut short would be a worse title than the provisional one.
    """
    text = _THINK.sub("", raw)
    line = next((ln.strip() for ln in text.splitlines() if ln.strip(_EDGES)), "")
    line = _PREFIX.sub("", line.strip(_EDGES)).strip(_EDGES)
    line = line.rstrip(".。!！?？:;,").strip(_EDGES)
    line = " ".join(line.split())
    if len(line.split()) > MAX_WORDS or len(line) > min(MAX_CHARS, MAX_TITLE):
        return ""
    return line


def is_provisional(title: str, messages: list[Message]) -> bool:
    """Whether a chat's title is still the one given at creation (or the default)."""
    if title == DEFAULT_TITLE:
        return True
    return any(
        m.role == "user" and m.parent_id is None and provisional_title(m.content) == title for m in messages
    )


class TitleService:
    """The `after_complete` hook that titles new chats."""

    def __init__(
        self,
        store: Store,
        models: ModelRegistry,
        completer_for: Callable[[ModelSpec], Completer | None],
        *,
        title_model: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        if title_model is not None:
            spec = models.specs.get(title_model)
            if spec is None or spec.provider == "webhook":
                raise ModelsFileError(
                    f"TITLE_MODEL {title_model!r} is not a usable OpenAI-compatible or local model "
                    f"({', '.join(i for i, s in models.specs.items() if s.provider != 'webhook') or 'none'})"
                )
        self.store = store
        self.models = models
        self.completer_for = completer_for
        self.title_model = title_model
        self.timeout = timeout
        self._running: set[asyncio.Task[object]] = set()
        # Told (user id, event) when a title is stored: app.py sends it to /api/events.
        self.on_title: Callable[[str, TitleEventOut], Awaitable[None]] | None = None

    async def after_answer(self, user: User, chat: Chat, answer: Message, question: Message) -> None:
        """Title the chat if this answer completes its first exchange and nobody titled it yet."""
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await self._title(user, chat, answer, question)
        finally:
            if task is not None:
                self._running.discard(task)

    async def _title(self, user: User, chat: Chat, answer: Message, question: Message) -> None:
        chat_id = chat.id
        if question.id != answer.parent_id or question.parent_id is not None:
            return  # not the first exchange
        messages = [question]  # enough when the title came from this question (the usual case)
        if not is_provisional(chat.title, messages):
            messages = await self.store.list_messages(user.id, chat_id)  # other first messages
            if not is_provisional(chat.title, messages):
                return  # the chat as the answer began: a title typed since is caught below
        spec = self.models.specs.get(self.title_model or answer.model or "")
        completer = self.completer_for(spec) if spec is not None else None
        if spec is None or completer is None:
            # A webhook agent, or a model no longer configured: never send the conversation
            # to another provider than the one the user chose.
            log.debug("chat %s keeps its provisional title (no model to title it)", chat_id)
            return
        if spec.provider == "local":
            await self._store(user, chat_id, messages, title_from_message(question.content), spec.id)
            return
        reasoning = "reasoning" in spec.features  # thinking tokens count against max_tokens
        request = ChatRequest(
            model=spec.upstream_model,
            messages=[
                {"role": "system", "content": INSTRUCTION},
                {
                    "role": "user",
                    "content": f"User: {question.content[:EXCERPT_CHARS]}\n\n"
                    f"Assistant: {answer.content[:EXCERPT_CHARS]}\n\nTitle of this conversation:",
                },
            ],
            temperature=None if reasoning else 0.3,
            max_tokens=min(2048 if reasoning else 32, spec.max_output_tokens),
            extra=dict(spec.extra_body),
        )
        try:
            async with asyncio.timeout(self.timeout):
                raw = await completer.complete(request)
        except (UpstreamError, TimeoutError) as exc:
            code = exc.code if isinstance(exc, UpstreamError) else "timeout"
            log.warning("title for chat %s with model %s failed: %s", chat_id, spec.id, code)
            return
        title = clean_title(raw)
        if not title or not acceptable_title(title, answer.content):
            log.warning("title for chat %s with model %s failed: the reply is not a short title",
                        chat_id, spec.id)
            return
        await self._store(user, chat_id, messages, shorten(title), spec.id)

    async def _store(self, user: User, chat_id: str, messages: list[Message], title: str, by: str) -> None:
        if not title:
            return
        # Read again: the user may have renamed the chat while the model was answering.
        current = await self.store.get_chat(user.id, chat_id)
        if current is None or current.title == title or not is_provisional(current.title, messages):
            return
        await self.store.update_chat(user.id, chat_id, {"title": title})
        log.info("chat %s titled (%s)", chat_id, f"for model {by}")
        if self.on_title is not None:
            await self.on_title(user.id, title_event(chat_id, title))

    async def close(self) -> None:
        """Cancel titles still being generated (shutdown): the chats keep their titles."""
        running = list(self._running)
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
