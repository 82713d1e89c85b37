"""The set of services one process runs, built once by gust/runtime.py and handed to handlers.

Every field is a fully built service: an optional feature that is not configured is a
concrete object that says so (NoWebSearch without SEARXNG_URL, the in-memory bus without
REDIS_URL...), never None.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gust.observability import Metrics
from gust.ports.app_store import AppStore
from gust.ports.bus import Bus
from gust.ports.isolation import Isolation
from gust.services.accounts import AccountServices
from gust.services.auth import AuthService
from gust.services.chats import ChatService
from gust.services.errorlog import ErrorLogService
from gust.services.files import FileService
from gust.services.follow import FollowService
from gust.services.generation import GenerationService
from gust.services.hub import GenerationHub
from gust.services.imports import ImportService
from gust.services.indexer import Indexer
from gust.services.knowledge import KnowledgeService
from gust.services.messages import MessageService
from gust.services.model_registry import ModelRegistry
from gust.services.openai_api import OpenAICompatService
from gust.services.profile import ProfileService
from gust.services.prompts import PromptService
from gust.services.ratelimit import RateLimitService
from gust.services.reaper import OwnerReaper
from gust.services.research import ResearchService
from gust.services.search import SearchService
from gust.services.shares import ShareService
from gust.services.suggestions import SuggestionService
from gust.services.titles import TitleService
from gust.services.usage import UsageService
from gust.services.user_events import UserEvents


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One component of /health/ready. `ping` raises when down; it may return a dict
    such as {"status": "degraded", "detail": ...} to report a partial problem."""

    backend: str
    ping: Callable[[], Awaitable[Any]]
    required: bool = True


@dataclass(frozen=True, slots=True)
class Services:
    metrics: Metrics
    store: AppStore
    bus: Bus
    # Parsing of untrusted uploads (imports, archives, documents) in limited worker processes.
    isolation: Isolation
    auth: AuthService
    chats: ChatService
    # Accounts and security: abuse limits (`await rate_limits.check(bucket, key)`), the
    # admins' error log, and teams / API keys / agents / sign-in providers.
    rate_limits: RateLimitService
    error_log: ErrorLogService
    accounts: AccountServices
    # Answers: the model registry, the hub of running generations, sending messages.
    models: ModelRegistry
    hub: GenerationHub
    generation: GenerationService
    follow: FollowService  # following and resuming answers (services/follow.py)
    research: ResearchService
    titles: TitleService
    reaper: OwnerReaper  # other processes' dead generations (a shared bus only)
    openai_api: OpenAICompatService  # /v1/chat/completions and /v1/models
    user_events: UserEvents  # GET /api/events (services/user_events.py)
    # Search: the service and the background indexer feeding its index.
    search: SearchService
    indexer: Indexer
    usage: UsageService
    # Deleting and rating single messages; the prompt library; share links; imports.
    messages: MessageService
    prompts: PromptService
    shares: ShareService
    imports: ImportService
    # A user's own defaults (PATCH /api/auth/me) and their team's suggested prompts.
    profiles: ProfileService
    suggestions: SuggestionService
    # Uploaded files (bytes, records, reading in isolated workers) and the knowledge found in
    # them: passages indexed when a file is ready, searched within the asker's scope.
    files: FileService
    knowledge: KnowledgeService
    # Components checked by /health/ready: name -> async ping callable.
    health_checks: Mapping[str, HealthCheck]
