"""Web adapters of research: the SSRF-safe fetcher, text extraction, SearxNG search."""
