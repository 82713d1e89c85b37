"""Sending messages: validate, pick the model and prompt, admit, persist, start the answer job.

The job itself (upstream -> events -> checkpoints -> final record) is services/answer.py;
following its stream is services/follow.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gust.domain.branches import current_branch, path_to
from gust.domain.errors import NotFound, ValidationError
from gust.domain.ids import new_id, now
from gust.domain.models import Chat, Message, User
from gust.observability import Metrics
from gust.ports.llm import ChatRequest
from gust.ports.store import Store
from gust.services.admission import Admission, check_max_tokens
from gust.services.agents import AgentService
from gust.services.answer import AnswerJob
from gust.services.chats import DEFAULT_TITLE, ChatService
from gust.services.context import build_messages
from gust.services.follow import AnswerStream
from gust.services.hub import Generation, GenerationHub
from gust.services.model_registry import ModelRegistry, ModelSpec
from gust.services.research import ResearchService
from gust.services.title_text import shorten
from gust.services.tool_loop import ToolLoop, check_tools, model_takes_tools, refuse_tools
from gust.services.tools import ToolBox

log = logging.getLogger(__name__)

# Run after an answer completes: (user, chat as the answer began, answer, its question).
AfterComplete = Callable[[User, Chat, Message, Message], Awaitable[None]]


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
    tools: list[str] | None = None  # tools the model may call (none by default this round)


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

    def stream(self) -> AnswerStream:
        """The answer's events from the start, for the request that sent it."""
        return AnswerStream(local=self.generation, fresh=True)

    def accepted(self) -> dict[str, Any]:
        """The 202 answer: where the answer is stored (follow it with GET .../events)."""
        return {
            "chat_id": self.chat.id,
            "message_id": self.assistant_message.id,
            "user_message_id": self.user_message.id if self.user_message else None,
            "generation_id": self.assistant_message.id,  # deprecated alias of message_id
        }


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
        tools: ToolBox,
        final_retry: float = 180.0,
    ) -> None:
        self.store = store
        self.tools = tools  # what answers may call (services/tool_loop.py)
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
        if options.tools:  # 422 before anything is stored (an existing chat's model: _binding)
            new_chat = chat_id is None and options.agent_id is None
            model = requested or (self.models.resolve_or_default(user.default_model) if new_chat else None)
            options.tools = await check_tools(self.tools, model, options.tools)
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
        history = [*path_to(messages, parent_id), user_message]
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
        history = path_to(messages, question_id)
        return await self._start(user, chat, binding, options, history, None)

    async def stop(self, user: User, chat_id: str) -> str | None:
        """Stop the chat's live answer wherever it runs: the id of the message it writes, or None."""
        await self.chats.get_chat(user, chat_id)
        stopped = await self.hub.stop(chat_id)
        if stopped is not None:
            return await self._message_of(user, chat_id, stopped)
        if self.hub.bus.shared:
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
                await self.hub.stop_generation(latest.generation_id or latest.id)
                return latest.id
        return None

    async def _message_of(self, user: User, chat_id: str, generation_id: str) -> str:
        """The answer a generation writes: its own id, except for a continuation's."""
        local = self.hub.generations.get(generation_id)
        if local is not None:
            return local.message_id
        if await self.store.get_message(user.id, generation_id) is not None:
            return generation_id
        messages = await self.store.list_messages(user.id, chat_id)
        return next((m.id for m in messages if m.generation_id == generation_id), generation_id)

    async def wait_answer(self, user: User, started: Started) -> Message:
        """The stored answer once its job ended (POST /chat/message)."""
        await started.generation.finished.wait()
        message = await self.store.get_message(user.id, started.assistant_message.id)
        if message is None:  # deleted while answering
            raise NotFound("the chat was deleted while answering")
        return message

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
        if options.tools and not model_takes_tools(spec):
            raise refuse_tools(spec)
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
            extra_body=dict(spec.extra_body),
        )
        tools = ToolLoop(self.tools, options.tools) if options.tools and model_takes_tools(spec) else None
        job = AnswerJob(
            self, user, chat, spec, request, assistant, question, user_message, options, persisted, tools
        )
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
                await self.store.update_message(
                    message.user_id, message.id, {"status": "interrupted"}, if_status="streaming"
                )
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


def provisional_title(text: str) -> str:
    """A new chat's title until one is generated (services/titles.py): its first message's start.

    Kept, not "New chat", so the sidebar names the chat at once and still does when the
    title cannot be generated (webhook models, a failing provider)."""
    return shorten(text) or DEFAULT_TITLE
