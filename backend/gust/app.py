"""Composition root: the only module that knows which adapters exist."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, cast

import tornado.httputil
import tornado.netutil
import tornado.web
from tornado.routing import Rule

from gust import __version__
from gust.adapters.bus.memory import MemoryBus
from gust.adapters.isolation.process import ProcessIsolation
from gust.adapters.llm.factory import LLMFactory
from gust.adapters.llm.local import local_model_available
from gust.adapters.llm.sessions import SessionPool
from gust.adapters.web.connect import OutboundGuard
from gust.config import ConfigError, Settings, stuck_store_limit
from gust.domain.models import User
from gust.handlers import admin, agents, api_keys, auth, chats, health, meta, oauth, stream
from gust.handlers import exports as export_handlers
from gust.handlers import messages as message_handlers
from gust.handlers import openai_api as openai_handlers
from gust.handlers import prompts as prompt_handlers
from gust.handlers import search as search_handlers
from gust.handlers import shares as share_handlers
from gust.handlers import suggestions as suggestion_handlers
from gust.handlers import usage as usage_handlers
from gust.handlers import user_events as user_events_handlers
from gust.handlers.base import NotFoundHandler, ShuttingDownHandler
from gust.handlers.frontend import frontend_handlers
from gust.handlers.openapi_doc import build_openapi
from gust.http_server import HideServerHeader, make_http_server
from gust.observability import Metrics
from gust.ports.accounts_store import AccountsStore
from gust.ports.bus import Bus
from gust.ports.search import SearchIndex, SearchIndexError
from gust.ports.search_store import SearchStore
from gust.ports.store import Store
from gust.ports.usage_store import UsageStore
from gust.services.accounts import AccountServices
from gust.services.agents import AgentService
from gust.services.api_keys import ApiKeyService
from gust.services.auth import AuthService
from gust.services.chats import ChatService
from gust.services.errorlog import ErrorLogService
from gust.services.follow import FollowService
from gust.services.generation import GenerationService
from gust.services.hub import GenerationHub
from gust.services.indexer import Indexer
from gust.services.messages import MessageService
from gust.services.models import (
    ModelEntry,
    ModelRegistry,
    ModelsFileError,
    load_models_file,
    local_entry,
    preset_entries,
)
from gust.services.oauth.providers import build_providers
from gust.services.oauth.service import OAuthService
from gust.services.profile import ProfileService
from gust.services.prompts import PromptService
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
from gust.services.reaper import OwnerReaper
from gust.services.reconcile import Reconciler
from gust.services.registry import HealthCheck, Services
from gust.services.research import ResearchService
from gust.services.search import SearchService
from gust.services.secretbox import SecretBox
from gust.services.suggestions import SuggestionService
from gust.services.teams import TeamService
from gust.services.titles import TitleService
from gust.services.usage import UsageService
from gust.services.user_events import UserEvents
from gust.services.watchdog import Watchdog

log = logging.getLogger(__name__)

FRONTEND_DIST = Path(__file__).resolve().parents[2] / "frontend" / "dist"


def api_handlers() -> list[Rule]:
    return [
        *health.default_handlers,
        *meta.default_handlers,
        *auth.default_handlers,
        *api_keys.default_handlers,
        *oauth.default_handlers,
        *admin.default_handlers,
        *agents.default_handlers,
        *chats.default_handlers,
        *message_handlers.default_handlers,
        *prompt_handlers.default_handlers,
        *export_handlers.default_handlers,
        *stream.default_handlers,
        *search_handlers.default_handlers,
        *usage_handlers.default_handlers,
        *openai_handlers.default_handlers,
        *share_handlers.default_handlers,
        *suggestion_handlers.default_handlers,
        *user_events_handlers.default_handlers,
    ]


class GustApplication(tornado.web.Application):
    """A Tornado application that owns (or lazily builds) its process's services."""

    def __init__(self, settings: Settings, services: Services | None, **tornado_settings: Any) -> None:
        self.gust_settings = settings
        self.services = services
        self.metrics = services.metrics if services is not None else Metrics()
        self.inflight: set[tornado.web.RequestHandler] = set()
        self.shutting_down = False  # set when shutdown begins: new requests get 503
        self.watchdog = Watchdog(
            loop_lag_limit=settings.watchdog_loop_lag_s, stuck_store_limit=stuck_store_limit(settings)
        )
        if services is not None:
            self.watch_store(services)
        self._idle = asyncio.Event()
        self._starting: asyncio.Future[None] | None = None
        self.api_rules = api_handlers()
        rules = [*self.api_rules, *frontend_handlers(FRONTEND_DIST)]
        self.openapi = build_openapi(rules)
        super().__init__(
            rules,
            default_handler_class=NotFoundHandler,
            log_function=self.metrics.log_request,
            debug=False,
            autoreload=False,
            compress_response=False,  # compression would buffer SSE
            xsrf_cookies=False,
            **tornado_settings,
        )
        self.add_transform(HideServerHeader)

    def find_handler(
        self, request: tornado.httputil.HTTPServerRequest, **kwargs: Any
    ) -> tornado.web._HandlerDelegate:
        if self.shutting_down:
            return self.get_handler_delegate(request, ShuttingDownHandler)
        return super().find_handler(request, **kwargs)

    def begin_shutdown(self) -> None:
        """From now on every new request, on any route, answers 503 (see ShuttingDownHandler)."""
        self.shutting_down = True

    def request_started(self, handler: tornado.web.RequestHandler) -> None:
        self.inflight.add(handler)

    def request_done(self, handler: tornado.web.RequestHandler) -> None:
        self.inflight.discard(handler)
        if not self.inflight:
            self._idle.set()

    @property
    def all_rules(self) -> list[Rule]:
        return list(self.wildcard_router.rules)

    async def start_services(self) -> None:
        """Build services on the running loop once (gunicorn workers start them on first use)."""
        if self.services is not None:
            return
        if self._starting is None:
            self._starting = asyncio.ensure_future(self._start())
        await asyncio.shield(self._starting)

    async def _start(self) -> None:
        services = await build_services(self.gust_settings, self.metrics)
        self.watch_store(services)
        self.services = services
        await start_background(services)
        self.watchdog.start()

    def watch_store(self, services: Services) -> None:
        """Let the watchdog see the store calls in flight (adapters/store/guard.py)."""
        calls = getattr(services.store, "calls", None)
        if calls is not None:
            self.watchdog.oldest_store_call = calls.oldest

    async def shutdown(self) -> None:
        """Wait for in-flight requests (up to SHUTDOWN_TIMEOUT), then close the services."""
        self.begin_shutdown()
        timeout = self.gust_settings.shutdown_timeout
        if self.services is not None and self.services.user_events is not None:
            self.services.user_events.close()  # notification streams end now
        if self.services is not None and self.services.hub is not None:
            # Running answers may finish; then the rest are stored as interrupted and their
            # streams end with a retryable server_shutdown error.
            await self.services.hub.shutdown(timeout)
        if self.inflight:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        if self.inflight:
            log.warning("shutdown: %d requests still open after %.1fs", len(self.inflight), timeout)
        if self.services is not None:
            await close_services(self.services)
        await self.watchdog.stop()


def make_store(settings: Settings) -> Store:
    if settings.mongodb_uri:
        from gust.adapters.store.mongo import MongoStore

        return MongoStore(
            settings.mongodb_uri, settings.mongodb_db_name, timeout_ms=settings.mongodb_timeout_ms
        )
    from gust.adapters.store.sqlite import SQLiteStore

    return SQLiteStore(settings.sqlite_path, busy_timeout=settings.sqlite_busy_timeout)


async def build_services(settings: Settings, metrics: Metrics | None = None) -> Services:
    """Create and start every client of this process, on the running event loop."""
    store = make_store(settings)
    await store.start()
    # Both store adapters mix in the accounts methods (adapters/store/*_accounts.py).
    accounts_store = cast(AccountsStore, store)
    rate_limits = await make_rate_limits(settings)
    services = Services(
        store=store,
        auth=AuthService(
            accounts_store,
            secret_key=settings.secret_key(),
            access_ttl=settings.access_token_ttl,
            bcrypt_rounds=settings.bcrypt_rounds,
            refresh_ttl=settings.refresh_token_ttl,
            rate_limits=rate_limits,
            registration=settings.registration,
            login_slowdown=settings.login_slowdown_seconds,
        ),
        chats=ChatService(store),
        metrics=metrics or Metrics(),
    )
    services.health_checks["store"] = HealthCheck(backend=store.name, ping=store.ping)
    services.isolation = ProcessIsolation(
        memory_bytes=settings.parse_worker_memory_mb * 1024 * 1024,
        timeout=settings.parse_timeout,
        max_concurrent=settings.parse_max_concurrent,
    )
    build_accounts(settings, services, accounts_store, rate_limits)
    await build_streaming(settings, services)
    limit_messages(services, rate_limits)
    if services.generation is not None and services.accounts is not None:
        services.generation.agents = services.accounts.agents
    services.research = make_research(settings)
    if services.generation is not None:
        services.generation.research = services.research
    await build_search(settings, services)
    services.messages = MessageService(store, services.chats, services.hub)
    services.prompts = PromptService(store)
    services.profiles = ProfileService(store, services.models)
    services.suggestions = SuggestionService(store)
    return services


def outbound_guard(settings: Settings) -> OutboundGuard:
    """The SSRF guard for user-configured URLs other than research pages (agents' webhooks):
    any port, private hosts only when SSRF_ALLOWED_HOSTS lists them."""
    from gust.adapters.web.guard import AddressPolicy, AllowList

    allowed = AllowList.parse(settings.ssrf_allowed_hosts)
    return OutboundGuard(AddressPolicy(allowed_ports=None, allowed=allowed))


def limit_messages(services: Services, rate_limits: RateLimitService) -> None:
    """RATE_LIMIT_MESSAGES_PER_MINUTE: checked before any message is stored or answered."""
    if services.generation is None:
        return

    async def per_user(user: User) -> None:
        await rate_limits.check(MESSAGES, user.id)

    services.generation.admission.guards.append(per_user)


async def make_rate_limits(settings: Settings) -> RateLimitService:
    """Abuse limits; counters in Redis when REDIS_URL is set (shared by every process)."""
    from gust.ports.ratelimit import RateLimiter

    limiter: RateLimiter
    if settings.redis_url:
        from gust.adapters.ratelimit.redis import RedisRateLimiter

        limiter = RedisRateLimiter(settings.redis_url)
    else:
        from gust.adapters.ratelimit.memory import MemoryRateLimiter

        limiter = MemoryRateLimiter()
    await limiter.start()
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


def build_accounts(
    settings: Settings, services: Services, store: AccountsStore, rate_limits: RateLimitService
) -> None:
    """Teams, API keys, agents, sign-in providers, abuse limits and the admins' error log."""
    from gust.adapters.http_json import AiohttpJson

    secret = settings.secret_key()
    services.rate_limits = rate_limits
    services.error_log = ErrorLogService(store, keep=settings.error_log_max_entries)
    services.accounts = AccountServices(
        teams=TeamService(store, services.auth, invite_ttl=settings.invite_ttl),
        api_keys=ApiKeyService(store),
        agents=AgentService(
            store, SecretBox(secret, "agent-webhook-token"), url_guard=outbound_guard(settings)
        ),
        oauth=OAuthService(services.auth, store, AiohttpJson(), build_providers(settings), secret_key=secret),
    )
    services.chats.check_agent = services.accounts.agents.get  # a chat binds its team's agents only


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


def make_indexer(settings: Settings, store: Store, index: SearchIndex, metrics: Metrics | None) -> Indexer:
    # Both store adapters mix in the search-state methods (adapters/store/*_search.py).
    search_store = cast(SearchStore, store)
    return Indexer(
        search_store,
        index,
        metrics=metrics,
        batch_size=settings.search_batch_size,
        interval=settings.search_index_interval,
        max_backoff=settings.search_backoff_max,
        backlog_threshold=settings.search_backlog_degraded,
    )


async def build_search(settings: Settings, services: Services) -> None:
    """Search index, service and indexer. An index that is down at start-up does not stop
    Gust: search answers 503, /health/ready shows it, and the indexer retries."""
    index = make_search_index(settings)
    indexer = make_indexer(settings, services.store, index, services.metrics)
    try:
        await index.start()
    except SearchIndexError as exc:
        log.warning("search index %s unavailable at start-up: %s", index.name, exc)
        indexer.index_started = False  # the indexer starts it before its next cycle
    indexer.reconcile_on_start = settings.search_reconcile_on_start
    services.indexer = indexer
    services.search = SearchService(indexer.store, index)
    services.health_checks["search"] = HealthCheck(backend=index.name, ping=indexer.health, required=False)


def make_research(settings: Settings) -> ResearchService:
    """Research: the SSRF-guarded fetcher, text extraction and optional SearxNG search."""
    from gust.adapters.web.extract import HtmlExtractor
    from gust.adapters.web.fetcher import SafeFetcher
    from gust.adapters.web.guard import AddressPolicy, AllowList
    from gust.adapters.web.searx import SearxClient
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
    search = SearxClient(settings.searxng_url, user_agent=user_agent) if settings.searxng_url else None
    options = ResearchOptions(
        auto_fetch_urls=settings.auto_fetch_urls,
        max_sources=settings.research_max_sources,
        page_timeout=settings.research_page_timeout,
        total_budget=settings.research_total_budget,
        context_tokens=settings.research_context_tokens,
    )
    return ResearchService(fetcher, HtmlExtractor(), search, options)


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


async def build_streaming(settings: Settings, services: Services) -> None:
    """Bus, model registry, generation hub and the service that sends messages."""
    env = {**settings.provider_env(), **os.environ}
    factory = LLMFactory(
        SessionPool(connect_timeout=settings.upstream_connect_timeout, guard=outbound_guard(settings)),
        first_token_timeout=settings.upstream_first_token_timeout,
        idle_timeout=settings.upstream_idle_timeout,
    )
    try:
        entries = model_entries(settings, env)
        registry = ModelRegistry(entries, factory, default=settings.default_model, env=env)
        titles = TitleService(services.store, registry, factory.completer, title_model=settings.title_model)
    except ModelsFileError as exc:
        raise ConfigError(str(exc)) from None
    bus = make_bus(settings)
    await bus.start()
    hub = GenerationHub(
        bus,
        grace_period=settings.stream_grace_period,
        ping_interval=settings.sse_ping_interval,
        max_active=settings.max_active_generations,
        owner_timeout=settings.generation_owner_timeout,
    )
    services.bus, services.hub, services.models = bus, hub, registry
    services.user_events = UserEvents(bus)
    titles.on_title = services.user_events.publish  # the sidebar learns new titles live
    services.extra["reaper"] = OwnerReaper(services.store, hub, settings.generation_owner_timeout)
    services.generation = GenerationService(
        services.store,
        services.chats,
        hub,
        registry,
        checkpoint_interval=settings.checkpoint_interval,
        final_retry=settings.store_final_retry_s,
        max_message_chars=settings.max_message_chars,
        system_prompt=settings.default_system_prompt,
        metrics=services.metrics,
    )
    services.follow = FollowService(services.store, services.chats, hub)
    services.extra["llm_factory"] = factory
    if settings.generate_titles:
        services.generation.after_complete.append(titles.after_answer)  # titles new chats
    services.extra["titles"] = titles
    # Both store adapters mix in the usage sums (adapters/store/*_usage.py).
    services.usage = UsageService(cast(UsageStore, services.store))
    services.health_checks["bus"] = HealthCheck(backend=bus.name, ping=bus.ping)


async def reindex(settings: Settings, *, full: bool, wait: float) -> int:
    """`python -m gust reindex`: one reconcile; prints its report as JSON; 0 when done."""
    store = make_store(settings)
    await store.start()
    index = make_search_index(settings)
    try:
        indexer = make_indexer(settings, store, index, None)
        indexer.index_started = False
        report = await Reconciler(indexer, full=full).run(wait_for_lock=wait)
    except SearchIndexError as exc:
        log.error("reindex failed: %s", exc)
        return 1
    finally:
        await index.close()
        await store.close()
    if report is None:
        log.error("another process is reconciling the search index; try again later")
        return 3
    print(json.dumps(dataclasses.asdict(report)))  # the command's output, for scripts
    return 0


async def start_background(services: Services) -> None:
    """Start the background tasks of a process (recovery, indexer...)."""
    if services.hub is not None:
        await services.hub.start()
    reaper = services.extra.get("reaper")
    if reaper is not None:
        reaper.start()  # only with a shared bus: other processes' dead generations
    if services.generation is not None:
        # In the background: a store that is down at start-up must not keep the process
        # from serving (it answers 503 meanwhile); recovery runs once the store answers.
        services.extra["recovery_task"] = asyncio.create_task(
            _recover_later(services.generation), name="recover-interrupted"
        )
    if services.indexer is not None:
        services.indexer.start()
        if services.indexer.reconcile_on_start:
            services.indexer.spawn(Reconciler(services.indexer).run_at_startup, "search-reconcile")


async def _recover_later(generation: GenerationService) -> None:
    delay = 1.0
    attempt = 0
    while True:
        attempt += 1
        try:
            await generation.recover_interrupted()
        except Exception as exc:  # noqa: BLE001 - keep trying until the store answers
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # a client library ate the cancellation
                raise asyncio.CancelledError from exc
            log.warning("recovering unfinished answers failed (attempt %d), retrying in %.0fs: %s",
                        attempt, delay, getattr(exc, "reason", None) or exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        else:
            return


async def close_services(services: Services) -> None:
    reaper = services.extra.get("reaper")
    if reaper is not None:
        await reaper.stop()
    recovery = services.extra.pop("recovery_task", None)
    if recovery is not None:
        recovery.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recovery
    if services.error_log is not None:
        await services.error_log.drain()
    if services.accounts is not None:
        await services.accounts.oauth.http.close()
    if services.rate_limits is not None:
        await services.rate_limits.limiter.close()
    if services.indexer is not None:
        await services.indexer.stop()
        await services.indexer.index.close()
    if services.research is not None:
        await services.research.close()
    if services.bus is not None:
        await services.bus.close()
    titles = services.extra.get("titles")
    if titles is not None:
        await titles.close()
    factory = services.extra.get("llm_factory")
    if factory is not None:
        await factory.close()
    await services.store.close()


def freeze_startup_heap() -> None:
    """Take what start-up built out of the garbage collector's scans.

    Modules, routes, compiled patterns and clients live as long as the process. Frozen,
    they are skipped by the full collections that running streams trigger, so those
    pauses (which every open stream and new request waits out) stay short.
    """
    gc.collect()
    gc.freeze()


def make_app(settings: Settings, services: Services | None) -> GustApplication:
    """The Tornado application; with services=None they are built on first request."""
    return GustApplication(settings, services)


async def main(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully.

    Listens first: /health answers at once and /health/ready reports the store down until
    it answers, so a store that is down at start-up delays nothing but readiness.
    """
    for warning in settings.deployment_warnings():
        log.warning("%s", warning)
    app = make_app(settings, None)
    server = make_http_server(app, settings)
    sockets = tornado.netutil.bind_sockets(settings.port, settings.host)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    log.info(
        "Gust %s serving on http://%s:%d (store %s)",
        __version__,
        "localhost" if settings.host in ("0.0.0.0", "::") else settings.host,  # noqa: S104
        port,
        "mongodb" if settings.mongodb_uri else "sqlite",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app.watchdog.start()
    starting = asyncio.ensure_future(app.start_services())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception() is not None:
        stopping.cancel()
        server.stop()
        starting.result()  # a bad models file, an unusable data directory...: exit with it
    if not stopping.done():
        freeze_startup_heap()
    await stopping
    app.begin_shutdown()  # from now on new requests answer 503
    deadline = settings.shutdown_timeout + settings.shutdown_force_after
    log.info("shutting down: no new connections; waiting up to %.0fs", settings.shutdown_timeout)
    # A thread, not the loop: it fires even when the loop itself is stuck.
    force = threading.Timer(deadline, _force_exit, args=(deadline,))
    force.daemon = True
    force.start()
    server.stop()
    if not starting.done():
        await asyncio.wait([starting], timeout=settings.shutdown_timeout)
    await app.shutdown()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.close_all_connections(), timeout=5)
    force.cancel()
    log.info("stopped")


def _force_exit(deadline: float) -> None:
    """The graceful shutdown hangs (a store or client that never answers): exit anyway."""
    log.error("shutdown did not finish within %.0fs of the signal: exiting now", deadline)
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    sys.stderr.flush()
    os._exit(1)
