"""The model registry ("model mapping"): public model ids -> provider, upstream id, limits."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml

from gust.domain.errors import ValidationError
from gust.domain.model_spec import ModelSpec, Provider
from gust.ports.llm import LLM

__all__ = ["ModelEntry", "ModelRegistry", "ModelSpec", "ModelsFileError", "Provider"]
LOCAL_MODEL_ID = "local"


class ModelsFileError(Exception):
    """The models file is invalid; the message names the file, the entry and the field."""


class ModelEntry(pydantic.BaseModel):
    """One entry of MODELS_FILE (also used for the built-in presets)."""

    model_config = pydantic.ConfigDict(extra="forbid")

    id: str = pydantic.Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:/@-]+$")
    provider: Provider = "openai"
    upstream_model: str | None = None
    base_url: str | None = pydantic.Field(None, validate_default=True)
    api_key_env: str | None = None
    api_key: str | None = None  # discouraged: prefer api_key_env
    display_name: str | None = None
    # "tools": the model calls functions (OpenAI's `tools`); only such models are sent tools.
    features: list[Literal["streaming", "reasoning", "vision", "long-context", "tools"]] = ["streaming"]
    context_window: int = pydantic.Field(8192, ge=256, le=10_000_000)
    # None: half the context window, at most 4096.
    max_output_tokens: int | None = pydantic.Field(None, ge=1, le=1_000_000, validate_default=True)
    default_temperature: float | None = pydantic.Field(None, ge=0, le=2)
    default_max_tokens: int | None = pydantic.Field(None, ge=1)
    price_input_per_million: float = pydantic.Field(0.0, ge=0)
    price_output_per_million: float = pydantic.Field(0.0, ge=0)
    include_usage: bool = True
    headers: dict[str, str] = {}
    extra_body: dict[str, Any] = {}
    webhook_token_env: str | None = None

    # Field validators (not one model validator) so that an error names its field.
    @pydantic.field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        provider = info.data.get("provider")
        if provider in ("openai", "webhook") and not value:
            raise ValueError(f"base_url is required for provider {provider!r}")
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value

    @pydantic.field_validator("max_output_tokens")
    @classmethod
    def _max_output(cls, value: int | None, info: pydantic.ValidationInfo) -> int:
        window = info.data.get("context_window")
        if window is None:
            return value or 4096  # context_window itself is invalid and reported
        if value is None:
            return min(4096, int(window) // 2)
        if value >= window:
            raise ValueError(f"must be less than context_window ({window}): the prompt needs room")
        return value

    @pydantic.field_validator("default_max_tokens")
    @classmethod
    def _default_max(cls, value: int | None, info: pydantic.ValidationInfo) -> int | None:
        limit = info.data.get("max_output_tokens")
        if value is not None and limit is not None and value > limit:
            raise ValueError(f"must be at most max_output_tokens ({limit})")
        return value


def _spec(entry: ModelEntry, env: Mapping[str, str]) -> ModelSpec:
    key = entry.api_key or (env.get(entry.api_key_env) if entry.api_key_env else None)
    return ModelSpec(
        id=entry.id,
        provider=entry.provider,
        upstream_model=entry.upstream_model or entry.id,
        display_name=entry.display_name or entry.id,
        base_url=entry.base_url,
        api_key=key,
        features=list(entry.features),
        context_window=entry.context_window,
        max_output_tokens=entry.max_output_tokens or min(4096, entry.context_window // 2),
        default_temperature=entry.default_temperature,
        default_max_tokens=entry.default_max_tokens,
        price_input_per_million=entry.price_input_per_million,
        price_output_per_million=entry.price_output_per_million,
        include_usage=entry.include_usage,
        headers=dict(entry.headers),
        extra_body=dict(entry.extra_body),
        webhook_token=env.get(entry.webhook_token_env) if entry.webhook_token_env else None,
    )


def preset_entries(env: Mapping[str, str], deepseek_url: str) -> list[ModelEntry]:
    """Built-in models, enabled by the providers' usual environment variables."""
    out: list[ModelEntry] = []

    def add(**kwargs: Any) -> None:
        out.append(ModelEntry(**kwargs))

    if env.get("DEEPSEEK_API_KEY"):
        common = {
            "provider": "openai",
            "base_url": deepseek_url,
            "api_key_env": "DEEPSEEK_API_KEY",
            "context_window": 65536,
            "max_output_tokens": 8192,
        }
        add(
            id="deepseek-chat",
            display_name="DeepSeek Chat",
            features=["streaming", "tools"],
            price_input_per_million=0.27,
            price_output_per_million=1.10,
            **common,
        )
        add(
            id="deepseek-reasoner",
            display_name="DeepSeek Reasoner",
            features=["streaming", "reasoning"],
            price_input_per_million=0.55,
            price_output_per_million=2.19,
            **common,
        )
    if env.get("OPENAI_API_KEY"):
        base = env.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
        add(
            id="gpt-4o-mini",
            display_name="GPT-4o mini",
            base_url=base,
            api_key_env="OPENAI_API_KEY",
            context_window=128000,
            max_output_tokens=16384,
            features=["streaming", "vision", "long-context", "tools"],
            price_input_per_million=0.15,
            price_output_per_million=0.60,
        )
        add(
            id="gpt-4o",
            display_name="GPT-4o",
            base_url=base,
            api_key_env="OPENAI_API_KEY",
            context_window=128000,
            max_output_tokens=16384,
            features=["streaming", "vision", "long-context", "tools"],
            price_input_per_million=2.5,
            price_output_per_million=10.0,
        )
    kimi = "MOONSHOT_API_KEY" if env.get("MOONSHOT_API_KEY") else "KIMI_API_KEY"
    if env.get(kimi):
        add(
            id="kimi-k2",
            display_name="Kimi K2",
            upstream_model="kimi-k2-0905-preview",
            base_url="https://api.moonshot.ai/v1",
            api_key_env=kimi,
            context_window=262144,
            max_output_tokens=16384,
            features=["streaming", "long-context", "tools"],
        )
        add(
            id="kimi-k2-thinking",
            display_name="Kimi K2 Thinking",
            upstream_model="kimi-k2-thinking",
            base_url="https://api.moonshot.ai/v1",
            api_key_env=kimi,
            context_window=262144,
            max_output_tokens=16384,
            features=["streaming", "reasoning", "long-context", "tools"],
        )
    glm = "GLM_API_KEY" if env.get("GLM_API_KEY") else "ZHIPUAI_API_KEY"
    if env.get(glm):
        add(
            id="glm-4.6",
            display_name="GLM-4.6",
            base_url="https://open.bigmodel.cn/api/paas/v4",
            api_key_env=glm,
            context_window=200000,
            max_output_tokens=16384,
            features=["streaming", "reasoning", "long-context", "tools"],
        )
    if env.get("ANTHROPIC_API_KEY"):
        add(
            id="claude-sonnet-4-5",
            display_name="Claude Sonnet 4.5",
            base_url="https://api.anthropic.com/v1",
            api_key_env="ANTHROPIC_API_KEY",
            context_window=200000,
            max_output_tokens=8192,
            include_usage=False,
            features=["streaming", "vision", "long-context", "tools"],
        )
    if env.get("GEMINI_API_KEY"):
        add(
            id="gemini-2.5-flash",
            display_name="Gemini 2.5 Flash",
            base_url="https://generativelanguage.googleapis.com/v1beta/openai",
            api_key_env="GEMINI_API_KEY",
            context_window=1_000_000,
            max_output_tokens=8192,
            features=["streaming", "vision", "long-context", "tools"],
        )
    if env.get("OLLAMA_BASE_URL"):
        base = env["OLLAMA_BASE_URL"].rstrip("/")
        add(
            id=env.get("OLLAMA_MODEL", "llama3.2"),
            display_name="Ollama " + env.get("OLLAMA_MODEL", "llama3.2"),
            base_url=base if base.endswith("/v1") else base + "/v1",
            context_window=8192,
        )
    return out


def local_entry() -> ModelEntry:
    return ModelEntry(
        id=LOCAL_MODEL_ID,
        provider="local",
        display_name="SmolLM2 135M (offline, local)",
        upstream_model="smollm2-135m-instruct",
        context_window=2048,
        # Long enough for a normal answer; a models file entry with `provider: local`
        # replaces this one (app.model_entries), e.g. to change these limits.
        max_output_tokens=1024,
        default_max_tokens=1024,
    )


def load_models_file(path: Path) -> list[ModelEntry]:
    """Parse MODELS_FILE (YAML or JSON): `models: [...]` or a bare list."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelsFileError(f"{path}: cannot read models file: {exc.strerror}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ModelsFileError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from None
    items = data.get("models") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ModelsFileError(f"{path}: expected a list of models (or a mapping with a 'models' list)")
    entries: list[ModelEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        label = f"entry {index}" + (
            f" ({item.get('id')!r})" if isinstance(item, dict) and item.get("id") else ""
        )
        try:
            entry = ModelEntry.model_validate(item)
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "entry"
            message = str(err["msg"]).removeprefix("Value error, ")
            raise ModelsFileError(f"{path}: {label}: field {where!r}: {message}") from None
        if entry.id in seen:
            raise ModelsFileError(f"{path}: {label}: field 'id': duplicate model id {entry.id!r}")
        seen.add(entry.id)
        entries.append(entry)
    return entries


class ModelRegistry:
    """Usable models and the LLM adapter for each (built lazily by an injected factory)."""

    def __init__(
        self,
        entries: list[ModelEntry],
        factory: Callable[[ModelSpec], LLM],
        *,
        default: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self._factory = factory
        self._llms: dict[tuple[str, str | None, str | None, str | None], LLM] = {}
        self.specs: dict[str, ModelSpec] = {}
        for entry in entries:
            spec = _spec(entry, env)
            if spec.provider == "openai" and entry.api_key_env and not spec.api_key:
                continue  # its key is not configured: not usable
            if spec.provider == "webhook" and entry.webhook_token_env and not spec.webhook_token:
                continue  # its token is not configured: every call would be refused
            self.specs[spec.id] = spec
        if default is not None and default not in self.specs:
            raise ModelsFileError(
                f"DEFAULT_MODEL {default!r} is not a usable model ({', '.join(self.specs)})"
            )
        self.default_id = default or next(iter(self.specs), None)

    def resolve(self, model_id: str | None) -> ModelSpec:
        """The spec for a requested id (None: the default); 422 naming the valid ids."""
        wanted = model_id or self.default_id
        if wanted is None:
            raise ValidationError(
                "no model is configured: set DEEPSEEK_API_KEY or MODELS_FILE", field="model"
            )
        spec = self.specs.get(wanted)
        if spec is None:
            raise ValidationError(
                f"unknown or unusable model {wanted!r}; valid models: {', '.join(self.specs) or 'none'}",
                field="model",
            )
        return spec

    def resolve_or_default(self, model_id: str | None) -> ModelSpec:
        """A stored choice (a chat's model): the default when it is no longer usable."""
        if model_id is not None and model_id in self.specs:
            return self.specs[model_id]
        return self.resolve(None)

    def webhook_spec(self, spec_id: str, name: str, url: str, token: str | None, model: str) -> ModelSpec:
        """A one-off spec for an agent's webhook (n8n-style), outside the public list."""
        return ModelSpec(
            id=spec_id,
            provider="webhook",
            upstream_model=model,
            display_name=name,
            base_url=url,
            api_key=None,
            features=["streaming"],
            context_window=32768,
            max_output_tokens=8192,
            default_temperature=None,
            default_max_tokens=None,
            price_input_per_million=0.0,
            price_output_per_million=0.0,
            webhook_token=token,
            user_configured=True,
        )

    def llm(self, spec: ModelSpec) -> LLM:
        # Keyed by endpoint and credentials too: an agent's webhook URL or token can change.
        key = (spec.id, spec.base_url, spec.api_key, spec.webhook_token)
        llm = self._llms.get(key)
        if llm is None:
            llm = self._llms[key] = self._factory(spec)
        return llm

    def public(self) -> dict[str, Any]:
        return {"items": [s.public() for s in self.specs.values()], "default": self.default_id}
