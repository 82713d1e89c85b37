"""The runtime of one process: every service built once, every resource closed in reverse.

`open_runtime(settings)` is the one builder, used by `python -m gust serve` (gust/serve.py),
by each gunicorn worker (gust/gunicorn_conf.py, through GustApplication.start_services) and
by the tests (tests/support/app_server.py). Each service is complete when its constructor
returns; each resource it starts (store, rate limiter, HTTP sessions, bus, search index,
background tasks...) is entered into ONE AsyncExitStack as a bounded close step
(gust/closing.py), so closing runs in reverse order of start and ends in time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from gust import wiring
from gust.closing import CloseBudget, cancel_task
from gust.config import ConfigError, Settings
from gust.domain.models import User
from gust.observability import Metrics
from gust.ports.app_store import AppStore
from gust.ports.retrieval import Retrieval, RetrievalError
from gust.ports.search import SearchIndexError
from gust.retrieval_wiring import make_embedder, make_retrieval
from gust.services.accounts import AccountServices
from gust.services.admission import Admission
from gust.services.agents import AgentService
from gust.services.api_keys import ApiKeyService
from gust.services.auth import AuthService
from gust.services.chats import ChatService
from gust.services.errorlog import ErrorLogService
from gust.services.files import FileLimits, FileService
from gust.services.follow import FollowService
from gust.services.generation import GenerationService
from gust.services.hub import GenerationHub
from gust.services.imports import ImportLimits, ImportService
from gust.services.knowledge import KnowledgeService
from gust.services.messages import MessageService
from gust.services.model_registry import ModelRegistry, ModelsFileError
from gust.services.oauth.providers import build_providers
from gust.services.oauth.service import OAuthService
from gust.services.openai_api import OpenAICompatService
from gust.services.profile import ProfileService
from gust.services.prompts import PromptService
from gust.services.ratelimit import MESSAGES
from gust.services.reaper import OwnerReaper
from gust.services.reconcile import Reconciler
from gust.services.registry import HealthCheck, Services
from gust.services.search import SearchService
from gust.services.secretbox import SecretBox
from gust.services.shares import ShareService
from gust.services.suggestions import SuggestionService
from gust.services.teams import TeamService
from gust.services.titles import TitleService
from gust.services.usage import UsageService
from gust.services.user_events import UserEvents
from gust.tools_wiring import build_toolbox

log = logging.getLogger(__name__)

# Longest any single close step may take (the budget as a whole is SHUTDOWN_FORCE_AFTER).
CLOSE_STEP_LIMIT = 5.0


def close_budget(settings: Settings) -> CloseBudget:
    """The close steps end a second before the force-exit timer would fire."""
    return CloseBudget(max(settings.shutdown_force_after - 1.0, 1.0), step_limit=CLOSE_STEP_LIMIT)


@asynccontextmanager
async def open_runtime(
    settings: Settings, metrics: Metrics | None = None, budget: CloseBudget | None = None
) -> AsyncIterator[Services]:
    """Start every service of this process on the running loop; close them all on exit."""
    budget = budget or close_budget(settings)
    async with AsyncExitStack() as stack:
        services = await _build(settings, metrics or Metrics(), stack, budget)
        stack.push_async_callback(_begin_closing, budget)  # pushed last: runs first
        yield services


async def _begin_closing(budget: CloseBudget) -> None:
    budget.start()


async def _build(
    settings: Settings, metrics: Metrics, stack: AsyncExitStack, budget: CloseBudget
) -> Services:
    step = budget.step
    secret = settings.secret_key()
    store = wiring.make_store(settings)
    await store.start()
    stack.push_async_callback(step("store", store.close))
    limiter = wiring.make_rate_limiter(settings)
    await limiter.start()
    stack.push_async_callback(step("rate limiter", limiter.close))
    rate_limits = wiring.make_rate_limits(settings, limiter)

    from gust.adapters.http_json import AiohttpJson
    from gust.adapters.isolation.process import ProcessIsolation

    isolation = ProcessIsolation(
        memory_bytes=settings.parse_worker_memory_mb * 1024 * 1024,
        timeout=settings.parse_timeout,
        max_concurrent=settings.parse_max_concurrent,
    )
    auth = AuthService(
        store,
        secret_key=secret,
        access_ttl=settings.access_token_ttl,
        bcrypt_rounds=settings.bcrypt_rounds,
        refresh_ttl=settings.refresh_token_ttl,
        refresh_reuse_grace=settings.refresh_reuse_grace,
        rate_limits=rate_limits,
        registration=settings.registration,
        login_slowdown=settings.login_slowdown_seconds,
    )
    oauth_http = AiohttpJson()
    stack.push_async_callback(step("sign-in provider sessions", oauth_http.close))
    agents = AgentService(
        store, SecretBox(secret, "agent-webhook-token"), url_guard=wiring.outbound_guard(settings)
    )
    accounts = AccountServices(
        teams=TeamService(store, auth, invite_ttl=settings.invite_ttl),
        api_keys=ApiKeyService(store),
        agents=agents,
        oauth=OAuthService(auth, store, oauth_http, build_providers(settings), secret_key=secret),
    )
    chats = ChatService(store, check_agent=agents.get)  # a chat binds its team's agents only
    error_log = ErrorLogService(store, keep=settings.error_log_max_entries)
    stack.push_async_callback(step("error log", error_log.drain))  # its writes, before the store closes

    # -- answers: models, bus, hub, titles, research, sending ------------------------------
    factory = wiring.make_llm_factory(settings)
    stack.push_async_callback(step("upstream sessions", factory.close))
    env = wiring.provider_env(settings)
    try:
        entries = wiring.model_entries(settings, env)
        models = ModelRegistry(entries, factory, default=settings.default_model, env=env)
    except ModelsFileError as exc:
        raise ConfigError(str(exc)) from None
    bus = wiring.make_bus(settings)
    await bus.start()
    stack.push_async_callback(step("bus", bus.close))
    hub = GenerationHub(
        bus,
        grace_period=settings.stream_grace_period,
        ping_interval=settings.sse_ping_interval,
        max_active=settings.max_active_generations,
        owner_timeout=settings.generation_owner_timeout,
    )
    await hub.start()
    # The drain (GustApplication.shutdown) lets answers finish first; here: what is left.
    stack.push_async_callback(step("generation hub", lambda: hub.shutdown(0)))
    user_events = UserEvents(bus)
    stack.callback(user_events.close)
    try:
        titles = TitleService(
            store, models, factory.completer, on_title=user_events.publish, title_model=settings.title_model
        )
    except ModelsFileError as exc:
        raise ConfigError(str(exc)) from None
    stack.push_async_callback(step("titles", titles.close))
    research = wiring.make_research(settings)
    stack.push_async_callback(step("research sessions", research.close))
    # Built-in tools through research's fetcher and search (MCP servers: with their admin API).
    tools = build_toolbox(settings, research=research)
    stack.push_async_callback(step("tools", tools.close))

    async def per_user(user: User) -> None:  # RATE_LIMIT_MESSAGES_PER_MINUTE
        await rate_limits.check(MESSAGES, user.id)

    admission = Admission(max_active=hub.max_active, running=lambda: hub.active_count, guards=[per_user])
    generation = GenerationService(
        store,
        chats,
        hub,
        models,
        checkpoint_interval=settings.checkpoint_interval,
        final_retry=settings.store_final_retry_s,
        max_message_chars=settings.max_message_chars,
        system_prompt=settings.default_system_prompt,
        research=research,
        agents=agents,
        admission=admission,
        after_complete=[titles.after_answer] if settings.generate_titles else [],
        metrics=metrics,
        tools=tools,
    )
    reaper = OwnerReaper(store, hub, settings.generation_owner_timeout)
    reaper.start()  # only with a shared bus: other processes' dead generations
    stack.push_async_callback(step("owner reaper", reaper.stop))

    # -- search -----------------------------------------------------------------------------
    index = wiring.make_search_index(settings)
    indexer = wiring.make_indexer(settings, store, index, metrics)
    try:
        await index.start()
    except SearchIndexError as exc:  # search answers 503, /health/ready shows it; retried
        log.warning("search index %s unavailable at start-up: %s", index.name, exc)
        indexer.index_started = False  # the indexer starts it before its next cycle
    stack.push_async_callback(step("search index", index.close))
    indexer.start()
    if indexer.reconcile_on_start:
        indexer.spawn(Reconciler(indexer).run_at_startup, "search-reconcile")
    stack.push_async_callback(step("search indexer", indexer.stop))

    files, knowledge, retrieval = await _build_files(settings, store, stack, budget)

    # In the background: a store that is down at start-up must not keep the process from
    # serving (it answers 503 meanwhile); recovery runs once the store answers.
    recovery = asyncio.create_task(_recover_later(generation), name="recover-interrupted")
    stack.push_async_callback(step("recovery of unfinished answers", lambda: cancel_task(recovery)))

    limits = ImportLimits(max_bytes=settings.import_max_bytes, max_members=settings.archive_max_members,
                          max_ratio=settings.archive_max_ratio, max_seconds=settings.parse_timeout)
    return Services(
        metrics=metrics,
        store=store,
        bus=bus,
        isolation=isolation,
        auth=auth,
        chats=chats,
        rate_limits=rate_limits,
        error_log=error_log,
        accounts=accounts,
        models=models,
        hub=hub,
        generation=generation,
        follow=FollowService(store, chats, hub),
        research=research,
        titles=titles,
        reaper=reaper,
        openai_api=OpenAICompatService(
            store, models, chats, max_message_chars=settings.max_message_chars, admission=admission
        ),
        user_events=user_events,
        search=SearchService(store, index),
        indexer=indexer,
        usage=UsageService(store),
        messages=MessageService(store, chats, hub),
        prompts=PromptService(store),
        shares=ShareService(store, chats),
        imports=ImportService(store, isolation, limits),
        profiles=ProfileService(store, models),
        suggestions=SuggestionService(store),
        files=files,
        knowledge=knowledge,
        health_checks={
            "store": HealthCheck(backend=store.name, ping=store.ping),
            "bus": HealthCheck(backend=bus.name, ping=bus.ping),
            "search": HealthCheck(backend=index.name, ping=indexer.health, required=False),
            "retrieval": HealthCheck(backend=retrieval.name, ping=retrieval.ping, required=False),
        },
    )


async def _build_files(
    settings: Settings, store: AppStore, stack: AsyncExitStack, budget: CloseBudget
) -> tuple[FileService, KnowledgeService, Retrieval]:
    """Uploaded files (bytes, records, reading in workers) and the passage index they feed."""
    step = budget.step
    storage = wiring.make_file_storage(settings)
    await storage.start()
    stack.push_async_callback(step("file storage", storage.close))
    embedder = make_embedder(settings)
    if settings.embeddings_backend != "local":
        await embedder.start()  # the bundled model loads on first use: start-up stays fast
    stack.push_async_callback(step("embedder", embedder.close))
    retrieval = make_retrieval(settings, embedder)
    try:
        await retrieval.start()
    except RetrievalError as exc:  # /health/ready shows it; uploads still store and read files
        log.warning("passage index %s unavailable at start-up: %s", retrieval.name, exc)
    stack.push_async_callback(step("passage index", retrieval.close))
    from gust.adapters.isolation.process import ProcessIsolation

    # Its own workers: documents get FILE_EXTRACT_* limits, not those of imports.
    isolation = ProcessIsolation(
        memory_bytes=settings.file_extract_memory_mb << 20,
        timeout=settings.file_extract_timeout,
        max_concurrent=settings.parse_max_concurrent,
    )
    files = FileService(store, storage, isolation, FileLimits.from_settings(settings))
    knowledge = KnowledgeService(files, store, embedder, retrieval)
    stack.push_async_callback(step("file reading", files.close))  # before the store and storage close
    recovery = asyncio.create_task(_recover_files_later(files), name="recover-files")
    stack.push_async_callback(step("recovery of unread files", lambda: cancel_task(recovery)))
    return files, knowledge, retrieval


async def _recover_files_later(files: FileService) -> None:
    """Read again the files a previous run left `processing`, once the store answers."""
    delay = 1.0
    while True:
        try:
            await files.recover()
        except Exception as exc:  # noqa: BLE001 - keep trying until the store answers
            log.warning("recovering unread files failed, retrying in %.0fs: %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
        else:
            return


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
