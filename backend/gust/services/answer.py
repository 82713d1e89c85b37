"""The answer job: one generation's work, from the upstream model to the stored answer.

Started by services/generation.py (sending, regenerating) and services/continuation.py.
It emits the stream's events (domain/events.py) into the generation's log (the hub
pushes them to subscribers), checkpoints the text to the store at most every
`checkpoint_interval` seconds, and stores the final record, retrying while the store is
unavailable, before the `done` event ends the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from gust.domain.errors import StoreUnavailable, UpstreamError
from gust.domain.events import (
    AnswerEvent,
    StatusEvent,
    done_event,
    error_event,
    sources_event,
    start_event,
    status_event,
    usage_event,
)
from gust.domain.ids import now
from gust.domain.model_spec import ModelSpec
from gust.domain.models import Chat, Message, User
from gust.ports.llm import LLM, ChatRequest, ToolCall
from gust.ports.store import Store
from gust.services.events import EventLog, ReasoningText
from gust.services.hub import Generation
from gust.services.usage import continued_answer, final_usage

if TYPE_CHECKING:
    from gust.observability import Metrics
    from gust.services.research import ResearchService
    from gust.services.tool_loop import ToolLoop

log = logging.getLogger(__name__)

SLOW_FINAL_WRITE = 1.5  # seconds a final write may take before the stream says it is waiting


class AnswerOptions(Protocol):
    """What the job reads of the request (services/generation.py's SendOptions)."""

    @property
    def research(self) -> bool: ...


# Run after an answer completes: (user, chat as the answer began, answer, its question).
AfterAnswer = Callable[[User, Chat, Message, Message], Awaitable[None]]


class Models(Protocol):
    """The model registry, as far as a job needs it: the client of a model."""

    def llm(self, spec: ModelSpec) -> LLM: ...


class AnswerHost(Protocol):
    """What every answer job shares: the sending service (services/generation.py)."""

    @property
    def store(self) -> Store: ...
    @property
    def models(self) -> Models: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def checkpoint_interval(self) -> float: ...
    @property
    def final_retry(self) -> float: ...  # seconds the final write is retried
    @property
    def research(self) -> ResearchService: ...
    @property
    def after_complete(self) -> Sequence[AfterAnswer]: ...

    def spawn(self, coro: Any) -> None: ...


class AnswerJob:
    """One generation's work: upstream -> events -> checkpoints -> final record."""

    __slots__ = (
        "service", "user", "chat", "spec", "request", "assistant", "question", "user_message",
        "options", "log", "usage", "finish_reason", "sources", "_checkpoint", "persisted",
        "stored_chars", "record_missing", "continued", "store_waiting", "final_stored", "tools",
    )  # fmt: skip
    # Set by run(): the generation's event log, the only place the answer's text lives.
    log: EventLog

    def __init__(
        self,
        service: AnswerHost,
        user: User,
        chat: Chat,
        spec: ModelSpec,
        request: ChatRequest,
        assistant: Message,
        question: Message,
        user_message: Message | None,
        options: AnswerOptions,
        persisted: asyncio.Future[None],
        tools: ToolLoop | None = None,  # the message asked for tools (services/tool_loop.py)
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
        self.tools = tools
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
        metrics.active_generations.inc()
        generation.emit(
            start_event(
                chat_id=self.chat.id,
                message_id=self.assistant.id,
                user_message_id=self.user_message.id if self.user_message else self.assistant.parent_id,
                parent_id=self.assistant.parent_id,
                model=self.spec.id,
                continues=self.continued.content if self.continued is not None else None,
            )
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
            content, reasoning, usage = continued_answer(self.continued, content, reasoning, usage)
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
        if self.tools is not None and self.tools.records:
            final["tool_calls"] = self.tools.stored()
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
        metrics.generations.labels(status).inc()
        ending: list[AnswerEvent] = []  # sent together: one write ends the stream
        if usage is not None:
            ending.append(usage_event(usage))
        if error is not None:
            ending.append(error_event(**error))
        ending.append(done_event(self.assistant.id, status, self.finish_reason, usage))
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
                generation.emit(status_event("store", "answer saved", True))
            return True

    def _tell_store_waiting(self, generation: Generation, reason: str) -> None:
        """Say once why `done` is late: the final write fails or hangs (logged, and a
        `status` event for every follower)."""
        if self.store_waiting or self.final_stored or generation.ended:
            return
        self.store_waiting = True
        log.warning("generation %s: storing its final answer failed, retrying for up to %.0fs: %s",
                    generation.id, self.service.final_retry, reason)
        detail = "saving the answer: the database is unavailable, retrying"
        generation.emit(status_event("store", detail, False))

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

        async def emit(event: StatusEvent) -> None:
            generation.emit(event)

        # Sources may take at most half of what the model can read after its answer budget.
        room = max(256, (self.spec.context_window - (self.request.max_tokens or 0)) // 2)
        result = await research.prepare(
            text, research_flag=self.options.research, emit=emit, context_tokens=room
        )
        if result is None:
            return
        self.sources = result.sources
        generation.emit(sources_event(result.sources))
        self.request.messages.insert(-1, {"role": "system", "content": result.context})

    async def _stream(self, generation: Generation) -> None:
        if self.tools is None:
            await self._round(generation)
        else:  # rounds until a text answer (services/tool_loop.py)
            rounds = partial(self._round, generation)
            await self.tools.answer(generation, self.request, rounds, self._start_checkpoint)

    async def _round(self, generation: Generation) -> list[ToolCall]:
        """Stream one answer of the upstream: its text to the log; the tool calls it ends in."""
        llm, tools, calls = self.service.models.llm(self.spec), self.tools, []
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
                    self.usage = chunk.usage if tools is None else tools.add_usage(chunk.usage)
                elif kind == "finish":
                    self.finish_reason = chunk.finish_reason
                elif kind == "status":
                    generation.emit(status_event("upstream", chunk.text, False))
                elif kind == "tool_call" and chunk.tool_call is not None:
                    calls.append(chunk.tool_call)
                if loop.time() >= next_checkpoint:
                    next_checkpoint = loop.time() + interval
                    self._start_checkpoint()
        return calls

    def _start_checkpoint(self) -> None:
        if not self.persisted.done():
            return  # the record is being created; nothing to update yet
        if self._checkpoint is not None and not self._checkpoint.done():
            return  # one write at a time; the next one will carry everything
        prior = self.continued
        changes: dict[str, Any] = {
            "content": (prior.content if prior else "") + self.log.text(),
            "reasoning": ((prior.reasoning or "") if prior else "") + self.log.text(reasoning=True) or None,
            "updated_at": time.time(),
            "index_state": "pending",
        }
        if self.tools is not None and self.tools.records:
            changes["tool_calls"] = self.tools.stored()
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


async def _logged(coro: Awaitable[None]) -> None:
    try:
        await coro
    except Exception:
        log.exception("after-answer hook failed")
