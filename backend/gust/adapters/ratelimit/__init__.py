"""Rate-limit counters: in-process memory or Redis."""
