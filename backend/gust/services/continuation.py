"""Continue a cut (finish_reason "length") or stopped answer into the same message.

The model gets the history, the stored answer as an assistant turn and a request to carry
on from where it ended; the new text streams as ordinary deltas on the chat's events and
is appended to the stored text. It passes the same admission policy as every generation.
"""

from __future__ import annotations

import asyncio
import dataclasses

from gust.domain.branches import path_to
from gust.domain.errors import Conflict, NotFound, ValidationError
from gust.domain.ids import new_id, now
from gust.domain.models import User
from gust.ports.llm import ChatRequest
from gust.services.answer import AnswerJob
from gust.services.context import build_messages
from gust.services.generation import GenerationService, SendOptions, Started

CONTINUE_INSTRUCTION = (
    "Continue your previous answer exactly where it stopped. Do not repeat anything you "
    "already wrote and do not comment on the interruption."
)


async def continue_answer(
    service: GenerationService, user: User, chat_id: str, message_id: str
) -> Started:
    async with service.admission.starting(user):
        chat = await service.chats.get_chat(user, chat_id)
        messages = await service.store.list_messages(user.id, chat.id)
        target = next((m for m in messages if m.id == message_id), None)
        if target is None:
            raise NotFound("message not found in this chat")
        if target.role != "assistant" or target.parent_id is None:
            raise ValidationError("only answers can be continued", field="message_id")
        if target.status == "streaming" or await service.hub.live_generation_id(chat.id) is not None:
            raise Conflict("an answer is still being generated in this chat", code="generation_active")
        options = SendOptions(message="")
        binding = await service._binding(user, chat, options)
        spec = binding.spec
        max_tokens = service.admission.max_tokens(spec, None)
        history = path_to(messages, target.parent_id)
        provider_messages = build_messages(
            binding.system_prompt, history, context_window=spec.context_window, max_tokens=max_tokens
        )
        provider_messages += [
            {"role": "assistant", "content": target.content},
            {"role": "user", "content": CONTINUE_INSTRUCTION},
        ]
        request = ChatRequest(
            model=spec.upstream_model,
            messages=provider_messages,
            temperature=spec.default_temperature,
            max_tokens=max_tokens,
            extra=dict(spec.extra_body),
        )
        started_at = now()
        generation_id = new_id()
        await service.store.update_message(
            user.id, target.id, {"status": "streaming", "finish_reason": None, "error": None,
                                 "generation_id": generation_id, "updated_at": started_at}
        )
        await service.store.update_chat(user.id, chat.id, {"updated_at": started_at})
        assistant = dataclasses.replace(target, status="streaming", finish_reason=None, error=None)
        persisted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        persisted.set_result(None)
        job = AnswerJob(service, user, chat, spec, request, assistant, history[-1], None, options, persisted)
        job.continued = target
        generation = await service.hub.start_generation(
            generation_id, chat.id, user.id, job.run, message_id=assistant.id
        )
        return Started(chat, None, assistant, generation, persisted)
