"""The adapters of the composition root: which one each setting selects.

Pure factories (nothing started here): gust/runtime.py starts and closes what they build,
and the `reindex` and `users` commands reuse them.
"""

from __future__ import annotations

import logging
import os

from gust import __version__
from gust.adapters.bus.memory import MemoryBus
from gust.adapters.llm.factory import LLMFactory
from gust.adapters.llm.local import local_model_available
from gust.adapters.llm.sessions import SessionPool
from gust.adapters.web.connect import OutboundGuard
from gust.config import Settings
from gust.observability import Metrics
from gust.ports.app_store import AppStore
from gust.ports.bus import Bus
from gust.ports.file_storage import FileStorage
from gust.ports.ratelimit import RateLimiter
from gust.ports.search import SearchIndex
from gust.ports.search_store import SearchStore
from gust.services.indexer import Indexer
from gust.services.model_registry import ModelEntry, load_models_file, local_entry, preset_entries
from gust.services.ratelimit import (
    LOGIN_ACCOUNT,
    LOGIN_ACCOUNT_IP,
    LOGIN_IP,
    MESSAGES,
    PASSWORD_CHANGE,
    REGISTER_ACCOUNT,
    REGISTER_IP,
    Limit,
    RateLimitService,
)
from gust.services.research import ResearchService

log = logging.getLogger(__name__)


def make_store(settings: Settings) -> AppStore:
    """MongoDB when MONGODB_URI is set, else SQLite in DATA_DIR. Typed as AppStore: mypy
    checks here that both adapters implement every store port."""
    if settings.mongodb_uri:
        from gust.adapters.store.mongo import MongoStore

        return MongoStore(
            settings.mongodb_uri, settings.mongodb_db_name, timeout_ms=settings.mongodb_timeout_ms
        )
    from gust.adapters.store.sqlite import SQLiteStore

    return SQLiteStore(settings.sqlite_path, busy_timeout=settings.sqlite_busy_timeout)


def make_file_storage(settings: Settings) -> FileStorage:
    """Uploaded files' bytes: GridFS when MONGODB_URI is set, else a directory in DATA_DIR."""
    if settings.mongodb_uri:
        from gust.adapters.files.gridfs import GridFSFileStorage

        return GridFSFileStorage(
            settings.mongodb_uri, settings.mongodb_db_name, timeout_ms=settings.mongodb_timeout_ms
        )
    from gust.adapters.files.directory import DirectoryFileStorage

    return DirectoryFileStorage(settings.files_dir)


def make_bus(settings: Settings) -> Bus:
    if settings.redis_url:
        from gust.adapters.bus.redis_streams import RedisBus

        return RedisBus(
            settings.redis_url,
            max_block=settings.sse_ping_interval,
            socket_timeout=settings.redis_socket_timeout,
            connect_timeout=settings.redis_connect_timeout,
        )
    return MemoryBus()


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """Counters in Redis when REDIS_URL is set (shared by every process), else in memory."""
    if settings.redis_url:
        from gust.adapters.ratelimit.redis import RedisRateLimiter

        return RedisRateLimiter(settings.redis_url)
    from gust.adapters.ratelimit.memory import MemoryRateLimiter

    return MemoryRateLimiter()


def make_rate_limits(settings: Settings, limiter: RateLimiter) -> RateLimitService:
    """Abuse limits by bucket (a limit of 0 is off)."""
    login = Limit(settings.rate_limit_login_per_minute, 60.0)
    return RateLimitService(
        limiter,
        {
            LOGIN_ACCOUNT_IP: login,
            LOGIN_IP: Limit(settings.login_ip_limit, 60.0),
            LOGIN_ACCOUNT: Limit(settings.login_account_limit, 60.0),
            PASSWORD_CHANGE: login,
            REGISTER_IP: login,
            REGISTER_ACCOUNT: login,
            MESSAGES: Limit(settings.rate_limit_messages_per_minute, 60.0),
        },
    )


def outbound_guard(settings: Settings) -> OutboundGuard:
    """The SSRF guard for user-configured URLs other than research pages (agents' webhooks):
    any port, private hosts only when SSRF_ALLOWED_HOSTS lists them."""
    from gust.adapters.web.guard import AddressPolicy, AllowList

    allowed = AllowList.parse(settings.ssrf_allowed_hosts)
    return OutboundGuard(AddressPolicy(allowed_ports=None, allowed=allowed))


def make_search_index(settings: Settings) -> SearchIndex:
    """Meilisearch when MEILISEARCH_HOST is set, else SQLite FTS5 in DATA_DIR/search.db."""
    if settings.meilisearch_host:
        from gust.adapters.search.meili import MeilisearchIndex

        return MeilisearchIndex(
            settings.meilisearch_host,
            settings.meilisearch_api_key,
            index_uid=settings.meilisearch_index,
            timeout=settings.meilisearch_timeout,
        )
    from gust.adapters.search.sqlite_fts import SQLiteSearchIndex

    return SQLiteSearchIndex(settings.search_path, busy_timeout=settings.search_lock_timeout)


def make_indexer(
    settings: Settings, store: SearchStore, index: SearchIndex, metrics: Metrics | None
) -> Indexer:
    return Indexer(
        store,
        index,
        metrics=metrics,
        batch_size=settings.search_batch_size,
        interval=settings.search_index_interval,
        max_backoff=settings.search_backoff_max,
        backlog_threshold=settings.search_backlog_degraded,
        reconcile_on_start=settings.search_reconcile_on_start,
    )


def make_research(settings: Settings) -> ResearchService:
    """Research: the SSRF-guarded fetcher, text extraction and optional SearxNG search."""
    from gust.adapters.web.extract import HtmlExtractor
    from gust.adapters.web.fetcher import SafeFetcher
    from gust.adapters.web.guard import AddressPolicy, AllowList
    from gust.adapters.web.searx import SearxClient
    from gust.ports.web import NoWebSearch, WebSearch
    from gust.services.research import ResearchOptions

    if settings.research_allow_private:
        log.warning(
            "RESEARCH_ALLOW_PRIVATE=true lets research reach any private address and port; "
            "prefer naming internal hosts in SSRF_ALLOWED_HOSTS"
        )

    user_agent = f"Gust-Research/{__version__} (self-hosted AI chat; fetches pages a user asked it to read)"
    fetcher = SafeFetcher(
        policy=AddressPolicy(
            allow_private=settings.research_allow_private,
            allowed_ports=settings.research_allowed_ports,
            allowed=AllowList.parse(settings.ssrf_allowed_hosts),
        ),
        page_timeout=settings.research_page_timeout,
        max_bytes=settings.research_max_bytes,
        user_agent=user_agent,
    )
    search: WebSearch = (
        SearxClient(settings.searxng_url, user_agent=user_agent) if settings.searxng_url else NoWebSearch()
    )
    options = ResearchOptions(
        auto_fetch_urls=settings.auto_fetch_urls,
        max_sources=settings.research_max_sources,
        page_timeout=settings.research_page_timeout,
        total_budget=settings.research_total_budget,
        context_tokens=settings.research_context_tokens,
    )
    return ResearchService(fetcher, HtmlExtractor(), search, options)


def make_llm_factory(settings: Settings) -> LLMFactory:
    return LLMFactory(
        SessionPool(connect_timeout=settings.upstream_connect_timeout, guard=outbound_guard(settings)),
        first_token_timeout=settings.upstream_first_token_timeout,
        idle_timeout=settings.upstream_idle_timeout,
    )


def provider_env(settings: Settings) -> dict[str, str]:
    """Provider keys from the settings (.env), overridden by the process environment."""
    return {**settings.provider_env(), **os.environ}


def model_entries(settings: Settings, env: dict[str, str]) -> list[ModelEntry]:
    """Presets enabled by keys, then MODELS_FILE, then the bundled local model (offline)."""
    entries = preset_entries(env, settings.deepseek_api_url)
    if settings.models_file is not None:
        entries += load_models_file(settings.models_file)
    # A models file entry with `provider: local` configures the bundled model itself.
    configured_local = any(entry.provider == "local" for entry in entries)
    if settings.local_model and local_model_available() and not configured_local:
        entries.append(local_entry())
    return entries
