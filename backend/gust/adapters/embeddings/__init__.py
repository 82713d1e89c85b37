"""Embedders: OpenAI-compatible HTTP, the bundled offline MiniLM, and none."""
