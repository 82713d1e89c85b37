"""The set of services one process runs, built in main() and handed to handlers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from gust.observability import Metrics
from gust.ports.bus import Bus
from gust.ports.isolation import Isolation
from gust.ports.store import Store
from gust.services.accounts import AccountServices
from gust.services.auth import AuthService
from gust.services.chats import ChatService
from gust.services.errorlog import ErrorLogService
from gust.services.follow import FollowService
from gust.services.generation import GenerationService
from gust.services.hub import GenerationHub
from gust.services.indexer import Indexer
from gust.services.messages import MessageService
from gust.services.models import ModelRegistry
from gust.services.profile import ProfileService
from gust.services.prompts import PromptService
from gust.services.ratelimit import RateLimitService
from gust.services.research import ResearchService
from gust.services.search import SearchService
from gust.services.suggestions import SuggestionService
from gust.services.usage import UsageService
from gust.services.user_events import UserEvents


@dataclass(slots=True)
class HealthCheck:
    """One component of /health/ready. `ping` raises when down; it may return a dict
    such as {"status": "degraded", "detail": ...} to report a partial problem."""

    backend: str
    ping: Callable[[], Awaitable[Any]]
    required: bool = True


@dataclass(slots=True)
class Services:
    store: Store
    auth: AuthService
    chats: ChatService
    metrics: Metrics
    bus: Bus | None = None
    hub: GenerationHub | None = None
    generation: GenerationService | None = None
    follow: FollowService | None = None  # following and resuming answers
    models: ModelRegistry | None = None
    research: ResearchService | None = None
    search: SearchService | None = None
    usage: UsageService | None = None
    indexer: Indexer | None = None
    user_events: UserEvents | None = None  # GET /api/events (services/user_events.py)
    # Accounts and security: abuse limits (`await rate_limits.check(bucket, key)`), the
    # admins' error log, and teams / API keys / agents / sign-in providers.
    rate_limits: RateLimitService | None = None
    error_log: ErrorLogService | None = None
    accounts: AccountServices | None = None
    # Deleting and rating single messages; the prompt library.
    messages: MessageService | None = None
    prompts: PromptService | None = None
    # A user's own defaults (PATCH /api/auth/me) and their team's suggested prompts.
    profiles: ProfileService | None = None
    suggestions: SuggestionService | None = None
    # Parsing of untrusted uploads (imports, archives, documents) in limited worker processes.
    isolation: Isolation | None = None
    # Components checked by /health/ready: name -> async ping callable.
    health_checks: dict[str, HealthCheck] = field(default_factory=dict)
    # Extra services added by later features (search, hub, models...) by name.
    extra: dict[str, Any] = field(default_factory=dict)
