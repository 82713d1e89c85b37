"""A configured chat model: which provider serves it, with what limits and prices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Provider = Literal["openai", "webhook", "local"]


@dataclass(slots=True)
class ModelSpec:
    id: str
    provider: Provider
    upstream_model: str
    display_name: str
    base_url: str | None
    api_key: str | None
    features: list[str]
    context_window: int
    max_output_tokens: int
    default_temperature: float | None
    default_max_tokens: int | None
    price_input_per_million: float
    price_output_per_million: float
    include_usage: bool = True
    headers: dict[str, str] = field(default_factory=dict)
    extra_body: dict[str, Any] = field(default_factory=dict)
    webhook_token: str | None = None
    # The endpoint came from a user (an agent's webhook), not the operator: the SSRF guard
    # checks it at connect time, and SSRF_ALLOWED_HOSTS must list it when it is private.
    user_configured: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.display_name,
            "provider": self.provider,
            "features": list(self.features),
            "context_window": self.context_window,
            "max_output_tokens": self.max_output_tokens,
            "price_input_per_million": self.price_input_per_million,
            "price_output_per_million": self.price_output_per_million,
        }

    def cost(self, usage: Mapping[str, int] | None) -> float:
        if not usage:
            return 0.0
        return (
            usage.get("prompt_tokens", 0) * self.price_input_per_million
            + usage.get("completion_tokens", 0) * self.price_output_per_million
        ) / 1_000_000
