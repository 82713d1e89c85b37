"""LLM adapters: OpenAI-compatible streaming, webhooks, the bundled local model."""
