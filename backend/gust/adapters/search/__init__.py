"""Search adapters: SQLite FTS5 (embedded) and Meilisearch."""
