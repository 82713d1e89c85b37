"""Store adapters (SQLite embedded, MongoDB)."""
