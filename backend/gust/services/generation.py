"""Sending messages: persist, start a generation job in the hub, run it, checkpoint, finish."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gust.domain.branches import current_branch
from gust.domain.errors import NotFound, StoreUnavailable, UpstreamError, ValidationError
from gust.domain.ids import new_id, now
from gust.domain.models import Chat, Message, User
from gust.observability import Metrics
from gust.ports.llm import ChatRequest
from gust.ports.store import Store
from gust.services.admission import Admission, check_max_tokens
from gust.services.agents import AgentService
from gust.services.chats import DEFAULT_TITLE, ChatService
from gust.services.context import build_messages
from gust.services.events import EventLog, ReasoningText
from gust.services.hub import Generation, GenerationHub
from gust.services.model_registry import ModelRegistry, ModelSpec
from gust.services.research import ResearchService
from gust.services.title_text import shorten
from gust.services.usage import final_usage

log = logging.getLogger(__name__)

# Run after an answer completes: (user, chat as the answer began, answer, its question).
AfterComplete = Callable[[User, Chat, Message, Message], Awaitable[None]]

SLOW_FINAL_WRITE = 1.5  # seconds a final write may take before the stream says it is waiting


@dataclass(slots=True)
class SendOptions:
    message: str
    model: str | None = None
    parent_id: str | None = None
    # True when the client sent `"parent_id": null`: a new root (editing a chat's first
    # message). An absent parent_id continues the current branch.
    new_root: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    research: bool = False
    # Only for a message that creates its chat: bind the new chat to this team agent.
    agent_id: str | None = None
    system_prompt: str | None = None  # a new chat's (send() refuses it with a chat_id)


@dataclass(slots=True)
class Binding:
    spec: ModelSpec
    system_prompt: str | None


@dataclass(slots=True)
class Started:
    chat: Chat
    user_message: Message | None
    assistant_message: Message
    generation: Generation
    # Resolves once the assistant record exists in the store (it is written while the
    # upstream request opens); a 202 answer awaits it so a client can read what it was told.
    persisted: asyncio.Future[None]

    async def stored(self) -> None:
        await asyncio.shield(self.persisted)


class GenerationService:
    def __init__(
        self,
        store: Store,
        chats: ChatService,
        hub: GenerationHub,
        models: ModelRegistry,
        *,
        checkpoint_interval: float,
        max_message_chars: int,
        system_prompt: str | None = None,
        research: ResearchService,
        agents: AgentService,
        admission: Admission,
        after_complete: Sequence[AfterComplete] = (),
        metrics: Metrics,
        final_retry: float = 180.0,
    ) -> None:
        self.store = store
        # How long a job keeps retrying its final write while the store is unavailable.
        self.final_retry = final_retry
        self.chats = chats
        self.hub = hub
        self.models = models
        self.checkpoint_interval = checkpoint_interval
        self.max_message_chars = max_message_chars
        self.default_system_prompt = system_prompt
        self.metrics = metrics
        # Capacity, per-user guards and max_tokens: shared with every path that generates.
        self.admission = admission
        # Hooks run after a generation completes (titles, indexing...); failures are logged.
        # Run after an answer completes: (user, chat as the answer began, answer, its question).
        self.after_complete: tuple[AfterComplete, ...] = tuple(after_complete)
        # The research step (URLs in the message, web search): services/research.py.
        self.research = research
        # Team agents: a chat bound to one uses its model, system prompt and webhook.
        self.agents = agents
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- entry points ------------------------------------------------------------------
    async def send(self, user: User, options: SendOptions, chat_id: str | None = None) -> Started:
        """Persist the user message and start answering it (creates the chat if needed)."""
        text = options.message
        if not text.strip():
            raise ValidationError("message must not be empty", field="message")
        if len(text) > self.max_message_chars:
            raise ValidationError(
                f"message is longer than {self.max_message_chars} characters", field="message"
            )
        if chat_id is not None and options.agent_id is not None:
            raise ValidationError("agent_id is only for a new chat (without chat_id)", field="agent_id")
        if chat_id is not None and options.system_prompt is not None:
            raise ValidationError(
                "system_prompt is for a new chat only: change an existing chat's with PATCH /api/chats/{id}",
                field="system_prompt",
            )
        requested = self._check_model(options)
        async with self.admission.starting(user):
            return await self._send(user, options, chat_id, requested)

    async def _send(
        self, user: User, options: SendOptions, chat_id: str | None, requested: ModelSpec | None
    ) -> Started:
        text = options.message  # validated by send()
        if chat_id is None:
            chat = await self.chats.create_chat(
                user,
                title=provisional_title(text),
                model=(requested or self.models.resolve_or_default(user.default_model)).id,
                agent_id=options.agent_id,
                system_prompt=options.system_prompt or None,
            )
            messages: list[Message] = []
        else:
            chat = await self.chats.get_chat(user, chat_id)
            messages = await self.store.list_messages(user.id, chat.id)
        binding = await self._binding(user, chat, options)
        parent_id = options.parent_id
        if parent_id is not None:
            if not any(m.id == parent_id for m in messages):
                raise NotFound("parent message not found in this chat")
        elif messages and not options.new_root:
            parent_id = current_branch(messages)[-1].id
        created = now()
        user_message = Message(
            id=new_id(),
            chat_id=chat.id,
            user_id=user.id,
            team_id=user.team_id,
            role="user",
            content=text,
            status="complete",
            created_at=created,
            updated_at=created,
            parent_id=parent_id,
        )
        await self.store.create_message(user_message)
        history = [*_path(messages, parent_id), user_message]
        return await self._start(
            user, chat, binding, options, history, user_message, touch_chat=chat_id is not None
        )

    async def regenerate(self, user: User, chat_id: str, message_id: str, options: SendOptions) -> Started:
        """A new sibling answer for an assistant message (or a new answer to a user message)."""
        self._check_model(options)
        async with self.admission.starting(user):
            return await self._regenerate(user, chat_id, message_id, options)

    async def _regenerate(self, user: User, chat_id: str, message_id: str, options: SendOptions) -> Started:
        chat = await self.chats.get_chat(user, chat_id)
        binding = await self._binding(user, chat, options)
        messages = await self.store.list_messages(user.id, chat.id)
        target = next((m for m in messages if m.id == message_id), None)
        if target is None:
            raise NotFound("message not found in this chat")
        question_id = target.parent_id if target.role == "assistant" else target.id
        if question_id is None:
            raise ValidationError("this message has no question to answer again", field="message_id")
        history = _path(messages, question_id)
        return await self._start(user, chat, binding, options, history, None)

    async def stop(self, user: User, chat_id: str) -> str | None:
        await self.chats.get_chat(user, chat_id)
        stopped = await self.hub.stop(chat_id)
        if stopped is None and self.hub.bus.shared:
            # The chat's live mark can be missing for a moment (Redis restarted without
            # persistence; its owner writes it again on its next heartbeat): the store
            # knows which answer is still running.
            running = [
                m
                for m in await self.store.list_messages(user.id, chat_id)
                if m.role == "assistant" and m.status == "streaming"
            ]
            if running:
                latest = max(running, key=lambda m: m.created_at)
                await self.hub.stop_generation(latest.id)
                stopped = latest.id
        return stopped

    # -- internals ---------------------------------------------------------------------
    def _check_model(self, options: SendOptions) -> ModelSpec | None:
        """An explicitly requested model must exist (422 before anything is stored)."""
        if options.model is None:
            return None
        spec = self.models.resolve(options.model)
        check_max_tokens(spec, options.max_tokens)
        return spec

    async def _binding(self, user: User, chat: Chat, options: SendOptions) -> Binding:
        """Which model answers and with which system prompt.

        Model: the request's, else the chat's agent's (its webhook if it has one), else the
        chat's own, else the default; a chat's stale model falls back to the default.
        System prompt: the chat's, else its agent's, else the user's default, else
        DEFAULT_SYSTEM_PROMPT.
        """
        agent = webhook = None
        if chat.agent_id:
            try:
                agent = await self.agents.get(user, chat.agent_id)
                webhook = await self.agents.webhook(user, agent.id)
            except NotFound:
                log.warning("chat %s is bound to agent %s, which is gone", chat.id, chat.agent_id)
        prompt = (
            chat.system_prompt
            or (agent.system_prompt if agent else None)
            or user.default_system_prompt
            or self.default_system_prompt
        )
        if options.model is not None:
            spec = self.models.resolve(options.model)
        elif agent is not None and webhook is not None:
            spec = self.models.webhook_spec(
                f"agent:{agent.id}", agent.name, webhook.url, webhook.token, agent.model or "agent"
            )
        else:
            spec = self.models.resolve_or_default(
                agent.model if agent and agent.model else chat.model or user.default_model
            )
        check_max_tokens(spec, options.max_tokens)
        return Binding(spec, prompt)

    async def _start(
        self,
        user: User,
        chat: Chat,
        binding: Binding,
        options: SendOptions,
        history: list[Message],
        user_message: Message | None,
        *,
        touch_chat: bool = True,
    ) -> Started:
        spec = binding.spec
        created = now()
        question = history[-1]
        assistant = Message(
            id=new_id(),
            chat_id=chat.id,
            user_id=user.id,
            team_id=user.team_id,
            role="assistant",
            content="",
            status="streaming",
            created_at=created,
            updated_at=created,
            parent_id=question.id,
            model=spec.id,
        )
        # Stored while the upstream request is being opened: the first token does not wait
        # for these writes; the job awaits them before its first checkpoint.
        persisted = asyncio.ensure_future(self._persist_answer(user, chat, assistant, touch_chat))
        chat = dataclasses.replace(chat, updated_at=created)
        max_tokens = self.admission.max_tokens(spec, options.max_tokens)
        request = ChatRequest(
            model=spec.upstream_model,
            messages=build_messages(
                binding.system_prompt,
                history,
                context_window=spec.context_window,
                max_tokens=max_tokens,
            ),
            temperature=options.temperature if options.temperature is not None else spec.default_temperature,
            max_tokens=max_tokens,
            extra=dict(spec.extra_body),
        )
        job = _Job(self, user, chat, spec, request, assistant, question, user_message, options, persisted)
        generation = await self.hub.start_generation(assistant.id, chat.id, user.id, job.run)
        return Started(chat, user_message, assistant, generation, persisted)

    async def _persist_answer(self, user: User, chat: Chat, assistant: Message, touch_chat: bool) -> None:
        await self.store.create_message(assistant)
        if touch_chat:  # a chat created for this message already has this time
            await self.store.update_chat(user.id, chat.id, {"updated_at": assistant.created_at})

    async def recover_interrupted(self) -> int:
        """Mark `streaming` messages with no live generation as `interrupted` (start-up).

        With a shared bus other processes may be running them: the reaper
        (services/reaper.py) ends those whose owner stopped, after the owner timeout.
        """
        if self.hub.bus.shared:
            return 0
        count = 0
        while True:
            stale = await self.store.list_messages_by_status("streaming", limit=500)
            todo = [
                m
                for m in stale
                if (key := m.generation_id or m.id) not in self.hub.generations
                and await self.hub.live_generation_id(m.chat_id) != key
            ]
            for message in todo:
                await self.store.update_message(message.user_id, message.id, {"status": "interrupted"})
                count += 1
            if len(stale) < 500 or not todo:
                break
        if count:
            log.warning("marked %d unfinished answers as interrupted", count)
        return count

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _Job:
    """One generation's work: upstream -> events -> checkpoints -> final record."""

    __slots__ = (
        "service", "user", "chat", "spec", "request", "assistant", "question", "user_message",
        "options", "log", "usage", "finish_reason", "sources", "_checkpoint", "persisted",
        "stored_chars", "record_missing", "continued", "store_waiting", "final_stored",
    )  # fmt: skip
    # Set by run(): the generation's event log, the only place the answer's text lives.
    log: EventLog

    def __init__(
        self,
        service: GenerationService,
        user: User,
        chat: Chat,
        spec: ModelSpec,
        request: ChatRequest,
        assistant: Message,
        question: Message,
        user_message: Message | None,
        options: SendOptions,
        persisted: asyncio.Future[None],
    ) -> None:
        self.service = service
        self.user = user
        self.chat = chat
        self.spec = spec
        self.request = request
        self.assistant = assistant
        self.question = question
        self.user_message = user_message
        self.options = options
        self.usage: dict[str, int] | None = None
        self.finish_reason: str | None = None
        self.sources: list[dict[str, Any]] | None = None
        self._checkpoint: asyncio.Task[None] | None = None
        self.persisted = persisted
        self.stored_chars = 0  # characters of the answer known to be in the store
        self.record_missing = False  # the answer's record could not be created
        self.store_waiting = False  # followers were told the final write waits on the store
        self.final_stored = False
        # Continuing a stored answer (services/continuation.py): its text so far, which the
        # new text is appended to (the events carry only the new text).
        self.continued: Message | None = None

    async def run(self, generation: Generation) -> None:
        self.log = generation.log
        metrics = self.service.metrics
        if metrics is not None:
            metrics.active_generations.inc()
        generation.emit(
            {
                "type": "start",
                "chat_id": self.chat.id,
                "message_id": self.assistant.id,
                "user_message_id": self.user_message.id if self.user_message else self.assistant.parent_id,
                "generation_id": generation.id,
                "parent_id": self.assistant.parent_id,
                "model": self.spec.id,
                **({"continues": self.continued.content} if self.continued is not None else {}),
            }
        )
        status = "complete"
        error: dict[str, Any] | None = None
        try:
            await self._research(generation)
            await self._stream(generation)
        except asyncio.CancelledError:
            status = "interrupted" if generation.stop_reason == "shutdown" else "stopped"
            if generation.stop_reason is None:
                raise  # not a stop we asked for
            if status == "interrupted":
                error = {
                    "code": "server_shutdown",
                    "message": "the server restarted while answering",
                    "retryable": True,
                }
        except UpstreamError as exc:
            status = "error"
            error = {"code": exc.code, "message": exc.message, "retryable": exc.retryable}
            if exc.retry_after is not None:
                error["retry_after"] = exc.retry_after  # the provider's Retry-After, in seconds
        except Exception:
            log.exception("generation %s failed", generation.id)
            status = "error"
            error = {"code": "internal_error", "message": "the answer failed; try again", "retryable": True}
        finally:
            if metrics is not None:
                metrics.active_generations.dec()
        # A store that hangs rather than failing is said as soon as a failure would be.
        slow = asyncio.get_running_loop().call_later(
            SLOW_FINAL_WRITE, self._tell_store_waiting, generation, "the database does not answer"
        )
        try:
            await self.persisted
        except Exception as exc:
            self.record_missing = True  # the final write creates it
            _log_store_error("storing the answer record of generation %s failed", generation.id, exc)
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
        content, reasoning = self.log.text(), self.log.text(reasoning=True)
        # Reported by the provider, else estimated (marked so) when any text came; priced.
        usage = final_usage(self.spec, self.usage, self.request.messages, content, reasoning)
        if self.continued is not None:
            content, reasoning, usage = _continued(self.continued, content, reasoning, usage)
        final: dict[str, Any] = {
            "content": content,
            "reasoning": reasoning or None,
            "status": status,
            "usage": usage,
            "error": error,
            "finish_reason": self.finish_reason,
            "updated_at": now(),
        }
        if self.sources is not None:
            final["sources"] = self.sources
        try:
            stored = await self._store_final(generation, final)
        finally:
            slow.cancel()
        if not stored and status == "complete":
            # Told `complete` only for text that is stored: it is not, and it no longer
            # will be by this process (the record stays `streaming`: reaped as interrupted).
            status = "interrupted"
            error = {
                "code": "store_unavailable",
                "message": "the answer could not be saved: the database is unavailable",
                "retryable": True,
            }
        if metrics is not None:
            metrics.generations.labels(status).inc()
        ending: list[dict[str, Any]] = []  # sent together: one write ends the stream
        if usage is not None:
            ending.append({"type": "usage", **usage})
        if error is not None:
            ending.append({"type": "error", **error})
        ending.append(
            {
                "type": "done",
                "message_id": self.assistant.id,
                "status": status,
                "finish_reason": self.finish_reason,
                "usage": usage,
            }
        )
        generation.emit(*ending)
        if status == "complete" and stored:
            message = dataclasses.replace(self.assistant, **final)  # as stored, without a read
            for hook in self.service.after_complete:
                self.service.spawn(_logged(hook(self.user, self.chat, message, self.question)))

    async def _store_final(self, generation: Generation, final: dict[str, Any]) -> bool:
        """Store the final record, retrying with backoff for up to the service's
        `final_retry` seconds while the store is unavailable; the stream's `done` waits
        for it (followers see a `status` event meanwhile). False: not stored, logged."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.service.final_retry
        delay, attempt = 0.5, 0
        while True:
            attempt += 1
            try:
                await self._write_final(final)
            except asyncio.CancelledError:
                self._log_lost(generation, final, "the process is stopping")
                if generation.stop_reason is None:
                    raise
                return False
            except Exception as exc:  # noqa: BLE001 - a write that fails is retried, then given up
                reason = getattr(exc, "reason", None) or repr(exc)
                if loop.time() + delay > deadline or generation.stop_reason == "shutdown":
                    self._log_lost(generation, final, f"{attempt} attempts failed, the last: {reason}")
                    return False
                self._tell_store_waiting(generation, reason)
                try:
                    await asyncio.sleep(delay)
                except asyncio.CancelledError:
                    self._log_lost(generation, final, "the process is stopping")
                    if generation.stop_reason is None:
                        raise
                    return False
                delay = min(delay * 2, 10.0)
                continue
            self.final_stored = True
            if self.store_waiting:
                log.warning("generation %s: final answer stored after %d attempts", generation.id, attempt)
                generation.emit({"type": "status", "stage": "store", "done": True, "detail": "answer saved"})
            return True

    def _tell_store_waiting(self, generation: Generation, reason: str) -> None:
        """Say once why `done` is late: the final write fails or hangs (logged, and a
        `status` event for every follower)."""
        if self.store_waiting or self.final_stored or generation.ended:
            return
        self.store_waiting = True
        log.warning("generation %s: storing its final answer failed, retrying for up to %.0fs: %s",
                    generation.id, self.service.final_retry, reason)
        generation.emit({"type": "status", "stage": "store", "done": False,
                         "detail": "saving the answer: the database is unavailable, retrying"})

    async def _write_final(self, final: dict[str, Any]) -> None:
        store = self.service.store
        if self.record_missing:
            existing = await store.get_message(self.user.id, self.assistant.id)
            if existing is None:
                await store.create_message(dataclasses.replace(self.assistant, **final))
                self.record_missing = False
                return
            self.record_missing = False
        await store.update_message(self.user.id, self.assistant.id, final)

    def _log_lost(self, generation: Generation, final: dict[str, Any], why: str) -> None:
        """Say plainly which answer lost what: its record keeps the last checkpoint."""
        content = final["content"] or ""
        log.error(
            "generation %s: the final answer of message %s (chat %s, status %s, %d characters) "
            "was NOT stored (%s); the store keeps %d characters of it and it will be marked "
            "interrupted; %d characters lost",
            generation.id, self.assistant.id, self.chat.id, final["status"], len(content), why,
            self.stored_chars, max(0, len(content) - self.stored_chars),
        )

    async def _research(self, generation: Generation) -> None:
        research = self.service.research
        if self.user_message is None:
            return
        text = self.user_message.content
        if not research.wants_research(text, self.options.research):
            return

        async def emit(event: dict[str, Any]) -> None:
            generation.emit(event)

        # Sources may take at most half of what the model can read after its answer budget.
        room = max(256, (self.spec.context_window - (self.request.max_tokens or 0)) // 2)
        result = await research.prepare(
            text, research_flag=self.options.research, emit=emit, context_tokens=room
        )
        if result is None:
            return
        self.sources = result.sources
        generation.emit({"type": "sources", "sources": result.sources})
        self.request.messages.insert(-1, {"role": "system", "content": result.context})

    async def _stream(self, generation: Generation) -> None:
        llm = self.service.models.llm(self.spec)
        loop = asyncio.get_running_loop()
        interval = self.service.checkpoint_interval
        next_checkpoint = loop.time() + interval
        emit_text, emit_reasoning = generation.emit_text, generation.emit_reasoning
        async with contextlib.aclosing(llm.stream(self.request)) as chunks:  # type: ignore[type-var]
            async for chunk in chunks:
                kind = chunk.kind
                if kind == "delta":
                    emit_text(chunk.text)
                elif kind == "reasoning":
                    emit_reasoning(ReasoningText(chunk.text))
                elif kind == "usage":
                    self.usage = chunk.usage
                elif kind == "finish":
                    self.finish_reason = chunk.finish_reason
                elif kind == "status":
                    status = {"type": "status", "stage": "upstream", "detail": chunk.text, "done": False}
                    generation.emit(status)
                if loop.time() >= next_checkpoint:
                    next_checkpoint = loop.time() + interval
                    self._start_checkpoint()

    def _start_checkpoint(self) -> None:
        if not self.persisted.done():
            return  # the record is being created; nothing to update yet
        if self._checkpoint is not None and not self._checkpoint.done():
            return  # one write at a time; the next one will carry everything
        prior = self.continued
        changes = {
            "content": (prior.content if prior else "") + self.log.text(),
            "reasoning": ((prior.reasoning or "") if prior else "") + self.log.text(reasoning=True) or None,
            "updated_at": time.time(),
            "index_state": "pending",
        }
        self._checkpoint = asyncio.ensure_future(self._write_checkpoint(changes))

    async def _write_checkpoint(self, changes: dict[str, Any]) -> None:
        try:
            await self.service.store.update_message(self.user.id, self.assistant.id, changes)
        except StoreUnavailable:
            return  # the store logs the outage once; the next checkpoint carries everything
        except Exception:
            log.exception("checkpoint of message %s failed", self.assistant.id)
            return
        self.stored_chars = len(changes["content"])


def _log_store_error(message: str, generation_id: str, exc: Exception) -> None:
    if isinstance(exc, StoreUnavailable):
        log.warning(message + ": %s", generation_id, exc.reason)  # noqa: G003 - one format
    else:
        log.error(message, generation_id, exc_info=exc)


def _continued(
    prior: Message, content: str, reasoning: str, usage: dict[str, Any] | None
) -> tuple[str, str, dict[str, Any] | None]:
    """A continued answer's text and usage: what it had, plus what came now."""
    total = dict(prior.usage or {})
    for key, value in (usage or {}).items():
        old = total.get(key)
        both_numbers = isinstance(value, int | float) and isinstance(old, int | float)
        total[key] = old + value if both_numbers and not isinstance(value, bool) else value
    return prior.content + content, (prior.reasoning or "") + reasoning, total or None


async def _logged(coro: Awaitable[None]) -> None:
    try:
        await coro
    except Exception:
        log.exception("after-answer hook failed")


def _path(messages: list[Message], leaf_id: str | None) -> list[Message]:
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


def provisional_title(text: str) -> str:
    """A new chat's title until one is generated (services/titles.py): its first message's start.

    Kept, not "New chat", so the sidebar names the chat at once and still does when the
    title cannot be generated (webhook models, a failing provider)."""
    return shorten(text) or DEFAULT_TITLE
