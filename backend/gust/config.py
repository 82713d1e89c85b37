"""Settings: one validated pydantic-settings class read from the environment and `.env`."""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)

SECRET_FILE = "secret_key"  # noqa: S105 - a file name, not a secret
MIN_SECRET_BYTES = 32


class ConfigError(Exception):
    """Invalid configuration; the message is printed as-is at start-up."""


class Settings(BaseSettings):
    """Every knob Gust reads. Names follow the product brief; see `.env.example`."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    gust_env: Literal["development", "production"] = "development"
    host: str = "0.0.0.0"  # noqa: S104 - a server is meant to be reachable
    port: int = Field(8100, ge=0, le=65535)
    debug: bool = False
    data_dir: Path = Path("./data")
    public_url: str | None = None
    log_level: str = "INFO"
    log_format: Literal["plain", "json"] = "plain"

    # Store / search / bus backends (absent = embedded default).
    mongodb_uri: str | None = None
    mongodb_db_name: str = "gust"
    # Store outages (adapters/store/guard.py): every call is bounded, then answers 503.
    mongodb_timeout_ms: int = Field(5000, ge=100)  # timeoutMS, server selection, connect, socket
    sqlite_busy_timeout: float = Field(10.0, gt=0)  # wait this long for another process's lock
    store_final_retry_s: float = Field(180.0, ge=0)  # keep retrying an answer's final write
    meilisearch_host: str | None = None
    meilisearch_api_key: str | None = None
    redis_url: str | None = None

    # Search indexing (see DESIGN.md §5).
    search_batch_size: int = Field(500, ge=1, le=10_000)
    search_index_interval: float = Field(1.0, gt=0)  # seconds between indexer cycles when idle
    search_backoff_max: float = Field(60.0, gt=0)  # longest wait between retries of a failing index
    search_backlog_degraded: int = Field(10_000, ge=1)  # /health/ready: degraded from this backlog
    search_reconcile_on_start: bool = True
    search_lock_timeout: float = Field(5.0, gt=0)  # SQLite FTS5: wait this long for a locked file
    meilisearch_index: str = Field("gust", pattern=r"^[A-Za-z0-9_-]{1,200}$")
    meilisearch_timeout: float = Field(10.0, gt=0)

    # Retrieval over files (issue 20): embeddings and the passage index.
    # EMBEDDINGS: auto = an OpenAI-compatible API when EMBEDDINGS_URL is set, else the bundled
    # offline model; local = the bundled model; openai = EMBEDDINGS_URL; none = keyword-only.
    embeddings: Literal["auto", "local", "openai", "none"] = "auto"
    embeddings_url: str | None = None  # e.g. https://api.openai.com/v1 or .../v1/embeddings
    embeddings_model: str | None = None  # required with EMBEDDINGS_URL
    embeddings_api_key: str | None = None
    embeddings_batch_size: int = Field(64, ge=1, le=2048)  # texts per request / forward pass
    embeddings_timeout: float = Field(60.0, gt=0)  # seconds per request to EMBEDDINGS_URL
    embeddings_threads: int = Field(1, ge=1, le=64)  # BLAS threads of the bundled model
    # Passages less similar than this to the query vector (cosine) are no vector match.
    retrieval_min_similarity: float = Field(0.0, ge=-1.0, lt=1.0)
    retrieval_meilisearch_index: str = Field("gust_passages", pattern=r"^[A-Za-z0-9_-]{1,200}$")

    # Models.
    deepseek_api_key: str | None = None
    deepseek_api_url: str = "https://api.deepseek.com"
    default_model: str | None = None
    models_file: Path | None = None
    local_model: bool = True
    default_system_prompt: str | None = None
    title_model: str | None = None
    generate_titles: bool = True  # False: chats keep the start of their first message
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    moonshot_api_key: str | None = None
    kimi_api_key: str | None = None
    glm_api_key: str | None = None
    zhipuai_api_key: str | None = None
    anthropic_api_key: str | None = None
    gemini_api_key: str | None = None
    ollama_base_url: str | None = None
    ollama_model: str | None = None

    # Auth.
    auth_secret_key: str | None = None
    access_token_ttl: int = Field(15 * 60, ge=60, le=24 * 3600)
    refresh_token_ttl: int = Field(7 * 24 * 3600, ge=3600)
    # Seconds after its use during which a refresh token presented again renews the session
    # (concurrent renewals of one browser) instead of ending its family as stolen; 0: never.
    refresh_reuse_grace: float = Field(10.0, ge=0, le=60)
    bcrypt_rounds: int = Field(12, ge=4, le=16)
    google_client_id: str | None = None
    google_client_secret: str | None = None
    microsoft_client_id: str | None = None
    microsoft_client_secret: str | None = None
    apple_client_id: str | None = None
    apple_client_secret: str | None = None
    github_client_id: str | None = None
    github_client_secret: str | None = None
    # Accounts and security (issue 5).
    registration: Literal["open", "invite", "closed"] | None = None  # None: open until a user exists
    invite_ttl: int = Field(7 * 24 * 3600, ge=300)
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()  # IPs/CIDRs whose X-Forwarded-* count
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()  # browser origins allowed besides PUBLIC_URL
    # Logins: refused past this many per (account, address) a minute; 0 disables all login limits.
    rate_limit_login_per_minute: int = Field(5, ge=0)
    rate_limit_login_ip_per_minute: int | None = Field(None, ge=0)  # per address; None: 4 x the above
    # Attempts on one account from all addresses past which each attempt waits
    # LOGIN_SLOWDOWN_SECONDS (never refused: the owner still gets in); None: 4 x the above.
    rate_limit_login_account_per_minute: int | None = Field(None, ge=0)
    login_slowdown_seconds: float = Field(2.0, ge=0, le=30)
    rate_limit_messages_per_minute: int = Field(20, ge=0)  # per user; 0 disables
    error_log_max_entries: int = Field(1000, ge=10)  # per team
    # GET /metrics: with a token, for `Authorization: Bearer <token>` only; without, only for
    # scrapers on this host (loopback connections that no proxy relayed).
    metrics_token: str | None = None
    microsoft_tenant: str = "common"
    apple_team_id: str | None = None
    apple_key_id: str | None = None
    apple_private_key: str | None = None  # PEM text (or set APPLE_PRIVATE_KEY_FILE)
    apple_private_key_file: Path | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_name: str = "Single sign-on"
    oidc_scopes: str = "openid email profile"
    # Provider endpoints; change them only for GitHub Enterprise, sovereign clouds or tests.
    google_issuer: str = "https://accounts.google.com"
    microsoft_authority: str = "https://login.microsoftonline.com"
    apple_issuer: str = "https://appleid.apple.com"
    github_url: str = "https://github.com"
    github_api_url: str = "https://api.github.com"

    @field_validator("trusted_proxies", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):  # "10.0.0.0/8, 127.0.0.1" in the environment
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or network") from None
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for origin in value:
            if origin == "*" or not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                raise ValueError(f"{origin!r} is not an origin such as https://chat.example.com")
        return tuple(origin.lower() for origin in value)

    # Limits.
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    import_max_bytes: int = Field(50 * 1024 * 1024, ge=1024)  # POST /api/import only
    # Uploads are parsed in a short-lived worker process with these caps (ports/isolation.py).
    parse_worker_memory_mb: int = Field(1024, ge=128)
    parse_timeout: float = Field(60.0, gt=0)
    parse_max_concurrent: int = Field(2, ge=1)
    # Files (uploads to chat, issue 20): bytes in DATA_DIR/files or GridFS with MONGODB_URI.
    file_max_bytes: int = Field(25 * 1024 * 1024, ge=1024)  # one upload (beyond: 413)
    file_quota_bytes: int = Field(1024 * 1024 * 1024, ge=0)  # one user's files; 0: no quota
    file_max_unpacked_bytes: int = Field(64 * 1024 * 1024, ge=1024 * 1024)  # Office XML, inflated
    file_max_text_chars: int = Field(10_000_000, ge=1000)  # text one file may yield
    file_max_image_pixels: int = Field(50_000_000, ge=1)
    file_extract_memory_mb: int = Field(1024, ge=128)  # the extraction worker's address space
    file_extract_timeout: float = Field(120.0, gt=0)  # seconds one file may take to read
    file_chunk_tokens: int = Field(500, ge=50, le=8000)  # largest passage, estimated tokens
    file_chunk_overlap_tokens: int = Field(60, ge=0)
    archive_max_members: int = Field(25_000, ge=1)
    archive_max_ratio: float = Field(250.0, ge=2)
    max_message_chars: int = Field(100_000, ge=1)
    max_active_generations: int = Field(256, ge=1)
    shutdown_timeout: float = Field(10.0, ge=0)
    # After SIGTERM, exit anyway this long after SHUTDOWN_TIMEOUT (a hung store or client).
    shutdown_force_after: float = Field(5.0, gt=0)
    # Liveness (/health answers 503 so an orchestrator restarts the process): the event
    # loop late by more than this, or a store call in flight longer than the other
    # (default: 3 x the store timeout).
    watchdog_loop_lag_s: float = Field(10.0, gt=0)
    watchdog_stuck_store_s: float | None = Field(None, gt=0)
    # Connections: a request's headers must arrive this many seconds after the connection
    # opens or answers its previous request (slow and idle clients are let go); its body
    # within HTTP_BODY_TIMEOUT; MAX_CONNECTIONS_PER_ADDRESS caps the open connections of one
    # client address (0: no cap; TRUSTED_PROXIES are exempt).
    http_idle_timeout: float = Field(65.0, gt=0)
    http_body_timeout: float = Field(300.0, gt=0)
    http_max_header_bytes: int = Field(64 * 1024, ge=4096)
    max_connections_per_address: int = Field(0, ge=0)

    # Streaming.
    checkpoint_interval: float = Field(1.0, gt=0)
    stream_grace_period: float = Field(60.0, ge=0)
    sse_ping_interval: float = Field(15.0, gt=0)
    # With REDIS_URL: a generation whose process stopped refreshing its owner mark for
    # this long is marked interrupted by another process and its followers are told.
    generation_owner_timeout: float = Field(20.0, ge=3, le=300)
    # Redis client: read timeout (unset: SSE_PING_INTERVAL + 10 s, above every blocking
    # read; a smaller value is raised to that) and connect timeout, in seconds.
    redis_socket_timeout: float | None = Field(None, gt=0)
    redis_connect_timeout: float = Field(5.0, gt=0)
    upstream_connect_timeout: float = Field(10.0, gt=0)
    upstream_first_token_timeout: float = Field(60.0, gt=0)
    upstream_idle_timeout: float = Field(60.0, gt=0)

    # Research (web pages named in a message, SearxNG search results).
    auto_fetch_urls: bool = True
    searxng_url: str | None = None
    # Private hosts every server-side fetch (research, agent webhooks) may reach: host names
    # (`*.corp.example` for subdomains), addresses, CIDR ranges; comma-separated.
    ssrf_allowed_hosts: str = ""
    research_allow_private: bool = False  # legacy, research only: lifts address/port checks
    research_allowed_ports: Annotated[frozenset[int], NoDecode] = frozenset({80, 443})
    research_page_timeout: float = Field(10.0, gt=0)
    research_total_budget: float = Field(30.0, gt=0)
    research_max_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    research_max_sources: int = Field(5, ge=1, le=20)
    research_context_tokens: int = Field(3000, ge=200)

    # Tools (function calling): calls per answer, seconds per call, characters of a result
    # sent back to the model, seconds a call that asks for approval waits before it counts
    # as denied; MCP servers: seconds to connect and open a session.
    tool_max_calls: int = Field(8, ge=1, le=100)
    tool_timeout_s: float = Field(30.0, gt=0, le=3600)
    tool_result_max_chars: int = Field(20_000, ge=200, le=1_000_000)
    tool_approval_timeout_s: float = Field(120.0, gt=0, le=86_400)
    mcp_connect_timeout_s: float = Field(10.0, gt=0, le=300)

    @field_validator("ssrf_allowed_hosts")
    @classmethod
    def _allow_list(cls, value: str) -> str:
        from gust.adapters.web.guard import AllowList

        AllowList.parse(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("research_allowed_ports", mode="before")
    @classmethod
    def _ports(cls, value: object) -> object:
        if isinstance(value, str):  # "80,443" in the environment
            value = [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("research_allowed_ports")
    @classmethod
    def _port_range(cls, value: frozenset[int]) -> frozenset[int]:
        if any(not 1 <= port <= 65535 for port in value):
            raise ValueError("ports must be between 1 and 65535")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {value!r}")
        return value

    @model_validator(mode="after")
    def _embeddings_endpoint(self) -> Settings:
        if self.embeddings == "openai" and not self.embeddings_url:
            raise ValueError("EMBEDDINGS=openai needs EMBEDDINGS_URL (and EMBEDDINGS_MODEL)")
        if self.embeddings_backend == "openai" and not self.embeddings_model:
            raise ValueError("EMBEDDINGS_URL needs EMBEDDINGS_MODEL, the model the endpoint should run")
        return self

    @property
    def embeddings_backend(self) -> Literal["local", "openai", "none"]:
        """The embedder EMBEDDINGS selects once `auto` is resolved."""
        if self.embeddings == "auto":
            return "openai" if self.embeddings_url else "local"
        return self.embeddings

    @model_validator(mode="after")
    def _chunk_overlap(self) -> Settings:
        if self.file_chunk_overlap_tokens * 2 > self.file_chunk_tokens:
            raise ValueError("FILE_CHUNK_OVERLAP_TOKENS must be at most half of FILE_CHUNK_TOKENS")
        return self

    @model_validator(mode="after")
    def _production_secret(self) -> Settings:
        if self.gust_env == "production":
            if not self.auth_secret_key:
                raise ValueError(
                    "AUTH_SECRET_KEY is required when GUST_ENV=production "
                    "(generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            if len(self.auth_secret_key.encode()) < MIN_SECRET_BYTES:
                raise ValueError(f"AUTH_SECRET_KEY must be at least {MIN_SECRET_BYTES} bytes")
        return self

    def provider_env(self) -> dict[str, str]:
        """Provider keys and URLs as environment names (so values from .env count too)."""
        names = ("deepseek_api_key", "openai_api_key", "openai_base_url", "moonshot_api_key", "kimi_api_key",
                 "glm_api_key", "zhipuai_api_key", "anthropic_api_key", "gemini_api_key", "ollama_base_url",
                 "ollama_model")
        return {name.upper(): str(value) for name in names if (value := getattr(self, name))}

    def deployment_warnings(self) -> list[str]:
        """Settings that work but are probably wrong; logged once at start-up."""
        warnings = []
        if self.public_url and self.public_url.lower().startswith("https://") and not self.trusted_proxies:
            warnings.append(
                "PUBLIC_URL is https but TRUSTED_PROXIES is unset: behind a reverse proxy every user "
                "shares the proxy's address (login limits, logs) and X-Forwarded-* are ignored; set "
                "TRUSTED_PROXIES to the proxy's address or network"
            )
        return warnings

    @property
    def login_ip_limit(self) -> int:
        if not self.rate_limit_login_per_minute:
            return 0
        value = self.rate_limit_login_ip_per_minute
        return 4 * self.rate_limit_login_per_minute if value is None else value

    @property
    def login_account_limit(self) -> int:
        if not self.rate_limit_login_per_minute:
            return 0
        value = self.rate_limit_login_account_per_minute
        return 4 * self.rate_limit_login_per_minute if value is None else value

    @property
    def production(self) -> bool:
        return self.gust_env == "production"

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "gust.db"

    @property
    def search_path(self) -> Path:
        return self.data_dir / "search.db"

    @property
    def retrieval_path(self) -> Path:
        return self.data_dir / "retrieval.db"

    @property
    def files_dir(self) -> Path:
        """Uploaded files' bytes when they are kept in a directory (no MONGODB_URI)."""
        return self.data_dir / "files"

    def secret_key(self) -> str:
        """The signing key; in development generated once and kept in DATA_DIR (mode 0600)."""
        if self.auth_secret_key:
            return self.auth_secret_key
        path = self.data_dir / SECRET_FILE
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Written to a private temporary file, then linked into place: link() fails if
            # the key exists, so workers starting at once agree on one key, and none can
            # read a half-written file.
            key = secrets.token_urlsafe(48)
            tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(key + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                os.link(tmp, path)
                log.info("generated a signing key in %s", path)
                return key
            except FileExistsError:
                pass  # another process was first: use its key
            finally:
                tmp.unlink(missing_ok=True)
        key = path.read_text().strip()
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            log.warning("%s is readable by other users; chmod 600 it", path)
        if len(key.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"{path} holds a key shorter than {MIN_SECRET_BYTES} bytes")
        return key


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's errors into one readable ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper() or "settings"
            lines.append(f"  {name}: {err['msg']}")
        raise ConfigError("invalid configuration:\n" + "\n".join(lines)) from None


def stuck_store_limit(settings: Settings) -> float:
    """WATCHDOG_STUCK_STORE_S, else three times the store's own timeout."""
    if settings.watchdog_stuck_store_s is not None:
        return settings.watchdog_stuck_store_s
    timeout = settings.mongodb_timeout_ms / 1000 if settings.mongodb_uri else settings.sqlite_busy_timeout
    return 3 * timeout
