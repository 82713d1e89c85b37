"""Builds the LLM adapter for a registry entry."""

from __future__ import annotations

from gust.adapters.llm.local import LocalLLM, LocalModelServer
from gust.adapters.llm.openai_compat import OpenAICompatLLM
from gust.adapters.llm.sessions import SessionPool
from gust.domain.model_spec import ModelSpec
from gust.ports.completion import Completer
from gust.ports.llm import LLM


class LLMFactory:
    def __init__(self, sessions: SessionPool, *, first_token_timeout: float, idle_timeout: float) -> None:
        self.sessions = sessions
        self.first_token_timeout = first_token_timeout
        self.idle_timeout = idle_timeout
        self.local_server: LocalModelServer | None = None
        self._completers: dict[tuple[str, str | None], Completer] = {}

    def _local_server(self, spec: ModelSpec) -> LocalModelServer:
        if self.local_server is None:
            self.local_server = LocalModelServer(context=spec.context_window)
        return self.local_server

    def completer(self, spec: ModelSpec) -> Completer | None:
        """A non-streaming client for the model (titles); None for webhooks."""
        if spec.provider == "webhook":
            return None
        if spec.provider == "local":
            key: tuple[str, str | None] = ("local", None)
            if key not in self._completers:
                self._completers[key] = LocalLLM(self._local_server(spec), self.sessions)
            return self._completers[key]
        key = (_url(spec), spec.api_key)
        if key not in self._completers:
            self._completers[key] = OpenAICompatLLM(key[0], spec.api_key, self.sessions, headers=spec.headers)
        return self._completers[key]

    def __call__(self, spec: ModelSpec) -> LLM:
        if spec.provider == "local":
            return LocalLLM(
                self._local_server(spec),
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
                guarded=spec.user_configured,
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
        self._completers.clear()
        await self.sessions.close()
        if self.local_server is not None:
            self.local_server.close()


def _url(spec: ModelSpec) -> str:
    if not spec.base_url:
        raise ValueError(f"model {spec.id} has no base_url")  # the registry validates this earlier
    return spec.base_url
