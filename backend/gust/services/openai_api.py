"""The OpenAI-compatible API (`/v1/chat/completions`, `/v1/models`) over Gust's models.

Requests name a model of Gust's registry and are streamed through its LLM adapter, so a
script with a Gust API key reaches every configured provider with one credential.

Usage accounting: every completion's usage (reported by the provider, else estimated,
priced like chat answers by services/usage.final_usage) is recorded so GET /api/usage
counts it. With `X-Gust-Save: true` the exchange is stored as a chat (the client's
messages, then the answer carrying the usage), visible through /api/chats. Without it only
a usage record is stored (ports/usage_store.UsageRecord, source "api"): no text, no chat.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, cast

from gust.domain.errors import GustError, ValidationError
from gust.domain.ids import new_id, now
from gust.domain.models import Message, User
from gust.ports.llm import ChatRequest, Chunk, ToolCall
from gust.ports.store import Store
from gust.ports.usage_store import UsageRecord, UsageStore
from gust.services.admission import Admission
from gust.services.chats import ChatService
from gust.services.generation import provisional_title
from gust.services.models import ModelRegistry, ModelSpec
from gust.services.openai_request import (
    MAX_MESSAGES,
    CompletionIn,
    InMessage,
    ToolRequestError,
    check_tool_results,
    tools_payload,
)
from gust.services.usage import final_usage

__all__ = ["MAX_MESSAGES", "Completion", "CompletionIn", "InMessage", "OpenAICompatService", "OpenAIError"]


class OpenAIError(GustError):
    """An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message, code=code or type)
        self.status = status
        self.type = type
        self.param = param
        self.openai_code = code

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.openai_code,
            }
        }


@dataclass(slots=True)
class Completion:
    """One call in progress: what was asked and what has come back."""

    user: User
    spec: ModelSpec
    request: ChatRequest
    messages: list[InMessage]
    save: bool
    id: str = field(default_factory=lambda: "chatcmpl-" + new_id())
    created: int = field(default_factory=lambda: int(time.time()))
    parts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    reported: dict[str, int] | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    chat_id: str | None = None

    @property
    def content(self) -> str:
        return "".join(self.parts)

    def openai_usage(self) -> dict[str, int]:
        usage = self.usage or {}
        prompt = int(usage.get("prompt_tokens", 0))
        completion = int(usage.get("completion_tokens", 0))
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class OpenAICompatService:
    def __init__(
        self,
        store: Store,
        models: ModelRegistry,
        chats: ChatService,
        *,
        max_message_chars: int,
        admission: Admission | None = None,
    ) -> None:
        self.store = store
        self.models = models
        self.chats = chats
        self.max_message_chars = max_message_chars
        self.admission = admission

    def list_models(self) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": spec.id, "object": "model", "created": 0, "owned_by": spec.provider}
                for spec in self.models.specs.values()
            ],
        }

    def _spec(self, model_id: str) -> ModelSpec:
        try:
            return self.models.resolve(model_id)
        except ValidationError:
            raise OpenAIError(
                404, f"The model '{model_id}' does not exist", param="model", code="model_not_found"
            ) from None

    async def start(self, user: User, body: CompletionIn, *, save: bool) -> Completion:
        """Validate the request; nothing is stored before the answer is complete. The caller
        runs the completion inside `admitted()`."""
        spec = self._spec(body.model)
        for i, message in enumerate(body.messages):
            if message.size() > self.max_message_chars:
                raise OpenAIError(
                    400,
                    f"messages[{i}].content is longer than {self.max_message_chars} characters",
                    param=f"messages.{i}.content",
                    code="string_above_max_length",
                )
        try:
            max_tokens = Admission.max_tokens(spec, body.max_completion_tokens or body.max_tokens)
        except ValidationError as exc:
            raise OpenAIError(400, exc.message, param="max_tokens") from None
        try:
            supported = "tools" in spec.features
            tools, tool_choice = tools_payload(body.tools, body.tool_choice, supported=supported)
            check_tool_results([(m.role, m.tool_calls, m.tool_call_id) for m in body.messages])
        except ToolRequestError as exc:
            raise OpenAIError(400, exc.message, param=exc.param, code=exc.code) from None
        extra = dict(spec.extra_body)
        if tools and body.parallel_tool_calls is not None:
            extra["parallel_tool_calls"] = body.parallel_tool_calls
        request = ChatRequest(
            model=spec.upstream_model,
            messages=[m.wire() for m in body.messages],
            temperature=body.temperature if body.temperature is not None else spec.default_temperature,
            max_tokens=max_tokens,
            extra=extra,
            tools=tools,
            tool_choice=tool_choice,
        )
        return Completion(user, spec, request, body.messages, save)

    def admitted(self, user: User) -> contextlib.AbstractAsyncContextManager[None]:
        """The shared admission policy (MAX_ACTIVE_GENERATIONS, the per-user message rate),
        holding a place for the whole completion."""
        if self.admission is None:
            return contextlib.nullcontext()
        return self.admission.running(user)

    async def chunks(self, completion: Completion) -> AsyncGenerator[Chunk, None]:
        """The upstream's chunks, collected into `completion` on the way."""
        llm = self.models.llm(completion.spec)
        stream = llm.stream(completion.request)
        try:
            async for chunk in stream:
                if chunk.kind == "delta":
                    completion.parts.append(chunk.text)
                elif chunk.kind == "reasoning":
                    completion.reasoning.append(chunk.text)
                elif chunk.kind == "usage":
                    completion.reported = chunk.usage
                elif chunk.kind == "finish":
                    completion.finish_reason = chunk.finish_reason
                elif chunk.kind == "tool_call" and chunk.tool_call is not None:
                    completion.tool_calls.append(chunk.tool_call)
                yield chunk
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    async def finish(self, completion: Completion, *, status: str = "complete") -> None:
        """Price the usage and record it (and the exchange, when saving)."""
        completion.usage = final_usage(
            completion.spec,
            completion.reported,
            completion.request.messages,
            # Without reported usage, a tool-calls-only answer is estimated from its arguments.
            completion.content + "".join(call.arguments for call in completion.tool_calls),
            "".join(completion.reasoning),
        )
        user = completion.user
        created = now()
        if completion.save:
            await self._save(completion, status)
            return
        if completion.usage is None:
            return
        await cast(UsageStore, self.store).add_usage_record(
            UsageRecord(
                id=new_id(),
                user_id=user.id,
                team_id=user.team_id,
                model=completion.spec.id,
                usage=completion.usage,
                created_at=created,
            )
        )

    async def _save(self, completion: Completion, status: str) -> None:
        user = completion.user
        first_user = next((m.text() for m in completion.messages if m.role == "user"), "")
        system = next((m.text() for m in completion.messages if m.role in ("system", "developer")), None)
        chat = await self.chats.create_chat(
            user, title=provisional_title(first_user), model=completion.spec.id, system_prompt=system or None
        )
        completion.chat_id = chat.id
        parent: str | None = None
        stamp = now()
        for message in completion.messages:
            if message.role not in ("user", "assistant"):
                continue
            stamp += 1e-6  # keeps the order stable for stores sorting by creation time
            record = Message(
                id=new_id(),
                chat_id=chat.id,
                user_id=user.id,
                team_id=user.team_id,
                role=message.role,
                content=message.text(),
                status="complete",
                created_at=stamp,
                updated_at=stamp,
                parent_id=parent,
            )
            await self.store.create_message(record)
            parent = record.id
        stamp += 1e-6
        await self.store.create_message(
            Message(
                id=new_id(),
                chat_id=chat.id,
                user_id=user.id,
                team_id=user.team_id,
                role="assistant",
                content=completion.content,
                reasoning="".join(completion.reasoning) or None,
                status="complete" if status == "complete" else "error",
                created_at=stamp,
                updated_at=stamp,
                parent_id=parent,
                model=completion.spec.id,
                usage=completion.usage,
            )
        )
        await self.store.update_chat(user.id, chat.id, {"updated_at": stamp})

    # -- response shapes ---------------------------------------------------------------
    def response(self, completion: Completion) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": completion.content}
        if completion.tool_calls:
            message["content"] = completion.content or None
            message["tool_calls"] = [call.message_part() for call in completion.tool_calls]
        if completion.reasoning:
            message["reasoning_content"] = "".join(completion.reasoning)
        return {
            "id": completion.id,
            "object": "chat.completion",
            "created": completion.created,
            "model": completion.spec.id,
            "choices": [
                {"index": 0, "message": message, "finish_reason": completion.finish_reason or "stop"}
            ],
            "usage": completion.openai_usage(),
        }

    def chunk(
        self,
        completion: Completion,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        *,
        with_usage: bool = False,
    ) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": completion.created,
            "model": completion.spec.id,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if with_usage:
            out["usage"] = None
        return out

    def usage_chunk(self, completion: Completion) -> dict[str, Any]:
        return {
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": completion.created,
            "model": completion.spec.id,
            "choices": [],
            "usage": completion.openai_usage(),
        }


def openai_error_for(exc: BaseException) -> OpenAIError:
    """Any error as OpenAI's shape and status."""
    if isinstance(exc, OpenAIError):
        return exc
    if isinstance(exc, GustError):
        status = exc.status
        kinds = {
            401: ("authentication_error", "invalid_api_key"),
            403: ("permission_error", None),
            404: ("invalid_request_error", "not_found"),
            413: ("invalid_request_error", "request_too_large"),
            429: ("rate_limit_exceeded", "rate_limit_exceeded"),
        }
        if status in (400, 422):
            field_name = exc.detail.get("field")
            return OpenAIError(400, exc.message, param=field_name, code=exc.code)
        if status in kinds:
            kind, code = kinds[status]
            message = exc.message
            if status == 401 and exc.code == "unauthorized":
                # No credentials at all (Gust's code, as on every route); a wrong key below.
                message, code = "no API key provided: send 'Authorization: Bearer gust_...'", "unauthorized"
            elif status == 401:
                message = "incorrect API key provided"
            return OpenAIError(status, message, type=kind, code=code)
        if status == 502:
            return OpenAIError(502, exc.message, type="api_error", code=exc.code)
        return OpenAIError(status, exc.message, type="api_error", code=exc.code)
    return OpenAIError(
        500, "the server failed to handle this request", type="server_error", code="internal_error"
    )
