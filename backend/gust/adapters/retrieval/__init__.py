"""Retrieval adapters: SQLite FTS5 + sqlite-vec (embedded) and Meilisearch hybrid search."""
