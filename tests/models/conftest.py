"""Fixtures for model and provider tests: no provider keys (the streaming fixtures are the plugin's)."""

from __future__ import annotations

import pytest

# Every variable that enables a built-in preset: tests must not depend on the developer's keys.
PROVIDER_ENV = (
    "DEEPSEEK_API_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "MOONSHOT_API_KEY",
    "KIMI_API_KEY",
    "GLM_API_KEY",
    "ZHIPUAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "OLLAMA_BASE_URL",
    "OLLAMA_MODEL",
    "MODELS_FILE",
    "DEFAULT_MODEL",
    "TITLE_MODEL",
)


@pytest.fixture(autouse=True)
def no_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)
