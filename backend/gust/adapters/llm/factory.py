"""Builds the LLM adapter for a registry entry."""

from __future__ import annotations

from gust.adapters.llm.local import LocalLLM, LocalModelServer
from gust.adapters.llm.openai_compat import OpenAICompatLLM
from gust.adapters.llm.sessions import SessionPool
from gust.ports.llm import LLM
from gust.services.models import ModelSpec


class LLMFactory:
    def __init__(self, sessions: SessionPool, *, first_token_timeout: float, idle_timeout: float) -> None:
        self.sessions = sessions
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.local_server: LocalModelServer | None = None

    def __call__(self, spec: ModelSpec) -> LLM:
        if spec.provider == "local":
            if self.local_server is None:
                self.local_server = LocalModelServer(context=spec.context_window)
            return LocalLLM(
                self.local_server,
                self.sessions,
                first_token_timeout=self.first_token_timeout,
                idle_timeout=self.idle_timeout,
            )
        if spec.provider == "webhook":
            from gust.adapters.llm.webhook import WebhookLLM

            return WebhookLLM(
                _url(spec),
                spec.webhook_token,
                self.sessions,
                model=spec.upstream_model,
                first_token_timeout=self.first_token_timeout,
                idle_timeout=self.idle_timeout,
            )
        return OpenAICompatLLM(
            _url(spec),
            spec.api_key,
            self.sessions,
            include_usage=spec.include_usage,
            headers=spec.headers,
            first_token_timeout=self.first_token_timeout,
            idle_timeout=self.idle_timeout,
        )

    async def close(self) -> None:
        await self.sessions.close()
        if self.local_server is not None:
            self.local_server.close()


def _url(spec: ModelSpec) -> str:
    if not spec.base_url:
        raise ValueError(f"model {spec.id} has no base_url")  # the registry validates this earlier
    return spec.base_url
