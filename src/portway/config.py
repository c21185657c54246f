"""Typed settings: a YAML file plus ``PORTWAY_*`` environment variables, validated once.

Contract: ``load_settings()`` returns a fully validated ``Settings`` or raises
``ConfigError`` whose message names the offending key and why. ``${VAR}`` and
``${VAR:-default}`` inside YAML strings read the environment; a value that is only
``${VAR}`` with VAR unset becomes null, so optional secrets can stay unset.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from portway.periods import Period
from portway.retention import parse_retention
from portway.routing.config import RouteEntry, check_router_references

DEFAULT_LOCAL_MODEL = "smollm2-135m"
ENV_PREFIX = "PORTWAY_"
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """A user's configuration mistake; printed without a traceback."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriceConfig(_Strict):
    """Prices in USD per one million tokens."""

    input: float = Field(default=0.0, ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    output: float = Field(default=0.0, ge=0)


ContextStrategyName = Literal[
    "off", "truncate", "middle-out", "summarize", "retrieve", "fallback", "error"
]


class ContextConfig(_Strict):
    """How a model group fits long chat prompts to its context window (``context``)."""

    strategy: ContextStrategyName = "off"
    # Room kept for the answer; unset: the request's max tokens, else the output cap,
    # at most half the window.
    reserve_output_tokens: int | None = Field(default=None, ge=0)
    # The model that writes summaries (``summarize``, ``retrieve``); unset: this group.
    summarizer_model: str | None = None
    # The longest summary asked of the summarizer (its ``max_tokens``).
    summary_max_tokens: int = Field(default=256, ge=16)
    # ``retrieve``: at most this many older turns are put back next to the summary.
    retrieve_max_turns: int = Field(default=4, ge=1)


GuardrailMode = Literal["block", "redact", "monitor"]
GuardrailScope = Literal["input", "output", "both"]


class GuardrailPolicy(_Strict):
    """One guardrail turned on: ``block`` refuses (400), ``redact`` replaces what it finds
    (pii: reversibly, restored in the answer), ``monitor`` only logs and counts."""

    name: str = Field(min_length=1)
    mode: GuardrailMode = "monitor"
    scope: GuardrailScope = "both"
    # The guardrail's own settings (pii: ``entities``; sanitize: ``allowed_hosts``, ``html``).
    options: dict[str, Any] = Field(default_factory=dict)


class ModelConfig(_Strict):
    """One deployment: a public model name served by one provider.

    Entries sharing a ``name`` form a group of deployments for that public name.
    """

    name: str = Field(min_length=1)
    provider: str = Field(min_length=1)
    model: str | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    path: str | None = None
    context_window: int | None = Field(default=None, ge=1)
    max_output_tokens: int | None = Field(default=None, ge=1)
    supports_tools: bool | None = None
    supports_json_schema: bool | None = None
    supports_vision: bool | None = None
    # Continues a final assistant message (stream resume); unset: the provider's default.
    prefill: bool | None = None
    # True: send each tenant's prompts with vLLM's `cache_salt` (a digest of the tenant), so
    # the upstream's prefix cache is never shared between tenants.
    cache_salt: bool = False
    # False: this upstream has no `/v1/completions`; text completions are mapped to chat.
    supports_completions: bool | None = None
    # "native": `/v1/responses` is forwarded as-is to the upstream's own Responses API
    # (only an OpenAI upstream has one); "portway": Portway serves it through chat.
    responses: Literal["portway", "native"] = "portway"
    weight: float = Field(default=1.0, gt=0)
    priority: int = 0
    tags: list[str] = Field(default_factory=list)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    pricing: PriceConfig | None = None
    timeout: float = Field(default=600.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    options: dict[str, Any] = Field(default_factory=dict)
    # The group's context-window policy (the first entry of a group that sets one wins).
    context: ContextConfig | None = None
    # The group's own guardrails: replaces the top-level list for this model name.
    guardrails: list[GuardrailPolicy] | None = None

    @field_validator("api_version", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 2024-10-21 as a date; Azure wants the text.
        return value.isoformat() if isinstance(value, datetime.date) else value

    @model_validator(mode="after")
    def _native_responses_need_openai(self) -> ModelConfig:
        # The one upstream API with a Responses endpoint Portway can forward to.
        if self.responses == "native" and self.provider != "openai":
            raise ValueError(
                f"`responses: native` needs an upstream with its own Responses API "
                f"(provider `openai`); model `{self.name}` has provider `{self.provider}`"
            )
        return self

    @property
    def upstream_model(self) -> str:
        """The model id sent upstream (defaults to the public name)."""
        return self.model or self.name


CacheMode = Literal["deterministic", "always"]


class SemanticCacheConfig(_Strict):
    """Similar questions answered from the cache (off unless enabled here or per model)."""

    enabled: bool = False
    threshold: float = Field(default=0.9, gt=0, le=1)
    # "local": the bundled all-MiniLM-L6-v2 run in-process; else a declared model name
    # whose provider serves embeddings.
    embedding_model: str = Field(default="local", min_length=1)
    local_model_path: str | None = None
    index: Literal["memory", "redis"] = "memory"
    max_entries: int = Field(default=100_000, ge=1)
    # Longer prompts get exact hits only: past the embedding model's window (256 tokens
    # for MiniLM) two prompts can differ unseen, and the hit guard, which runs on the
    # event loop, reads bounded text (under a few ms at the upper bound).
    max_prompt_chars: int = Field(default=1000, ge=1, le=4000)


class CacheModelPolicy(_Strict):
    """Per-model overrides of the cache defaults; unset fields inherit them."""

    enabled: bool | None = None
    ttl: float | None = Field(default=None, gt=0)
    mode: CacheMode | None = None
    semantic: bool | None = None
    semantic_threshold: float | None = Field(default=None, gt=0, le=1)


class CacheConfig(_Strict):
    """Response caching (exact, then semantic); see ``portway.cache``."""

    enabled: bool = False
    backend: Literal["memory", "sqlite", "redis"] = "memory"
    ttl: float = Field(default=3600.0, gt=0)
    # The longest TTL a client may ask for (x-portway-cache-ttl); unset: the model's `ttl`.
    max_ttl: float | None = Field(default=None, gt=0)
    mode: CacheMode = "deterministic"
    shared: bool = False
    max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    max_entry_bytes: int = Field(default=4 * 1024 * 1024, ge=256)
    stale_ttl: float = Field(default=86400.0, ge=0)
    sqlite_path: str = "./.portway/cache.db"
    redis_prefix: str = Field(default="portway:cache:", min_length=1)
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)
    models: dict[str, CacheModelPolicy] = Field(default_factory=dict)


class KeysConfig(_Strict):
    """Virtual keys: how long a looked-up key is trusted before it is read again."""

    cache_ttl_seconds: float = Field(default=1.0, ge=0, le=60)


class LedgerConfig(_Strict):
    """The usage ledger (see ``accounting/ledger.py`` for the durability contract).

    ``journal``: rows are appended to a local journal before the response is sent and
    committed in batches; ``commit``: the response waits for the database commit;
    ``batch``: no waiting, a killed process may lose the last ``flush_interval_ms``."""

    enabled: bool = True
    durability: Literal["journal", "commit", "batch"] = "journal"
    journal_dir: str | None = None
    flush_interval_ms: int = Field(default=100, ge=1, le=60_000)
    max_batch: int = Field(default=500, ge=1)


class LimitsConfig(_Strict):
    """Rate limits and the per-deployment admission queue."""

    backend: Literal["auto", "memory", "redis"] = "auto"
    queue_max_depth: int = Field(default=1000, ge=0)
    queue_max_wait_seconds: float = Field(default=30.0, ge=0)


class AccountingConfig(_Strict):
    """Token estimates used before a call (limits, budget reservations)."""

    default_max_output_tokens: int = Field(default=4096, ge=1)
    estimate_factor: float = Field(default=1.1, ge=1.0)


class BudgetsConfig(_Strict):
    """How processes lease slices of budgets (see ``accounting/leases.py``).

    Every ``sync_interval_seconds`` a process renews its leases and gives back what it
    does not need; a lease not renewed for ``lease_ttl_seconds`` (its process died) is
    charged to its budget in full and freed. Clocks of processes sharing a database
    must agree to well within ``lease_ttl_seconds``."""

    sync_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    lease_ttl_seconds: float = Field(default=30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _ttl_outlives_syncs(self) -> BudgetsConfig:
        if self.lease_ttl_seconds < 3 * self.sync_interval_seconds:
            raise ValueError(
                "lease_ttl_seconds must be at least 3 x sync_interval_seconds, or live "
                "processes would lose their leases"
            )
        return self


class SystemPrincipalConfig(_Strict):
    """Who Portway's own model calls run as when no caller is behind them (indexing files
    into vector stores, semantic-cache embeddings). Its ledger rows carry ``key_id``; its
    limits apply like a virtual key's; ``max_budget`` (USD per ``budget_period``) is written
    to the key budget of ``key_id`` at start-up (admins see it in `/v1/admin/budgets`)."""

    key_id: str = Field(default="portway-system", min_length=1)
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    max_budget: float | None = Field(default=None, ge=0)
    budget_period: Period = "monthly"


class FilesConfig(_Strict):
    """Files (`/v1/files` uploads and code_interpreter outputs): bytes on disk under
    ``storage_dir``, metadata in the DB; ``tenant_quota_bytes`` bounds what one tenant
    (team, else key) keeps (null: no bound); files code_interpreter writes (purpose
    ``assistants_output``) expire ``generated_file_ttl_seconds`` after their creation
    (null: never); expired files are deleted every ``sweep_interval_seconds``."""

    storage_dir: str = "./.portway/files"
    max_bytes: int = Field(default=512 * 1024 * 1024, ge=1)
    tenant_quota_bytes: int | None = Field(default=10 * 1024 * 1024 * 1024, ge=1)
    generated_file_ttl_seconds: int | None = Field(default=7 * 24 * 3600, ge=1)
    sweep_interval_seconds: float = Field(default=60.0, gt=0, le=86_400)


class RetrievalConfig(_Strict):
    """Vector stores and file_search: chunking defaults (the ``auto`` strategy), search
    defaults, and the optional embedding model (a public model name) for hybrid ranking."""

    embedding_model: str | None = None
    chunk_size_tokens: int = Field(default=800, ge=100, le=4096)
    chunk_overlap_tokens: int = Field(default=400, ge=0)
    max_num_results: int = Field(default=10, ge=1, le=50)
    indexing_concurrency: int = Field(default=2, ge=1, le=64)
    # Seconds one file may take to extract and chunk (in a worker process) before it fails.
    indexing_timeout: float = Field(default=60.0, gt=0)
    embedding_batch_size: int = Field(default=64, ge=1, le=2048)

    @model_validator(mode="after")
    def _overlap_at_most_half(self) -> RetrievalConfig:
        if self.chunk_overlap_tokens * 2 > self.chunk_size_tokens:
            raise ValueError("chunk_overlap_tokens must not exceed half of chunk_size_tokens")
        return self


class CodeInterpreterConfig(_Strict):
    """The code_interpreter sandbox (see ``assistants/code_interpreter/README.md``)."""

    enabled: bool = True
    bwrap: str = "bwrap"  # bubblewrap: a name on PATH or a path; without it the tool is off
    python: str | None = None
    site_packages: bool = True
    cpu_seconds: int = Field(default=10, ge=1)
    session_cpu_seconds: int = Field(default=300, ge=1)
    wall_seconds: float = Field(default=30.0, gt=0)
    memory_bytes: int = Field(default=1024 * 1024 * 1024, ge=64 * 1024 * 1024)
    disk_bytes: int = Field(default=256 * 1024 * 1024, ge=1024 * 1024)
    max_file_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_processes: int = Field(default=16, ge=2)
    max_open_files: int = Field(default=64, ge=16)
    max_output_bytes: int = Field(default=20_000, ge=256)
    max_output_files: int = Field(default=20, ge=0)
    max_concurrent: int = Field(default=2, ge=1)
    max_sessions: int = Field(default=8, ge=1)
    idle_seconds: float = Field(default=600.0, gt=0)
    sandbox_uid: int = Field(default=300_000, ge=1000)  # first uid of sessions when root
    sandbox_uids: int = Field(default=4096, ge=1)  # how many, shared by all processes

    @model_validator(mode="after")
    def _sessions_cover_concurrency(self) -> CodeInterpreterConfig:
        if self.max_sessions < self.max_concurrent:
            raise ValueError("max_sessions must be at least max_concurrent")
        if self.sandbox_uids < self.max_sessions:
            raise ValueError("sandbox_uids must be at least max_sessions")
        if self.session_cpu_seconds < self.cpu_seconds:
            raise ValueError("session_cpu_seconds must be at least cpu_seconds")
        return self


class AssistantsConfig(_Strict):
    """The Assistants v2 run engine: background workers inside every Portway process.

    Runs are claimed from the database; a worker holds a claim as a lease it renews every
    ``lease_seconds / 3``, so a crashed process's runs are taken over once its leases lapse.
    """

    max_concurrent_runs: int = Field(default=16, ge=1, le=10_000)
    poll_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    requires_action_expiry_seconds: float = Field(default=600.0, gt=0)
    sweep_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    max_attempts: int = Field(default=2, ge=1, le=100)
    max_model_calls_per_run: int = Field(default=32, ge=1, le=1000)
    # Model calls of a run that may call tools; the next one gets tool_choice "none", so a
    # model that keeps calling tools ends the run with a message.
    max_tool_rounds: int = Field(default=8, ge=0, le=1000)
    # What one tool output adds to the next prompt, in characters (the rest is cut, with a
    # marker); the stored output and the run step keep it whole.
    max_tool_output_chars: int = Field(default=8000, ge=200, le=1_000_000)
    poll_after_ms: int = Field(default=500, ge=1, le=60_000)
    # A file_search run waits this long at most for its thread's attachments to be indexed.
    thread_files_wait_seconds: float = Field(default=60.0, ge=0, le=3600)


class BatchesConfig(_Strict):
    """The Batch API: batches are executed by background workers in every Portway process,
    claimed from the database with leases like runs (``lease_seconds``, ...).

    ``max_concurrent_batches`` batches execute at once per process, each with at most
    ``concurrency`` lines in flight; lines wait in the deployment queues at ``priority``
    (below interactive traffic, whose keys default to 0); the ledger records each line's
    cost less ``discount`` (0.5: half price). ``max_attempts``: restarts a batch survives.
    """

    max_concurrent_batches: int = Field(default=4, ge=1, le=1000)
    concurrency: int = Field(default=8, ge=1, le=1000)
    priority: int = -10
    discount: float = Field(default=0.5, ge=0, le=1)
    max_lines: int = Field(default=50_000, ge=1)
    poll_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    sweep_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    max_attempts: int = Field(default=10, ge=1, le=1000)


class SketchConfig(_Strict):
    """The architecture sketcher (``/v1/sketches``): generations and revisions run on
    background workers claimed from the database with leases, like batches.

    ``default_model``: the model a sketch uses when the request names none (unset: the
    first configured model). ``max_graph_tokens`` / ``max_doc_tokens`` cap the graph and
    the design narrative calls; ``strict``: ask for strict json_schema output.
    ``render_timeout_seconds`` bounds one export's layout and rendering (off the loop).
    """

    default_model: str | None = None
    temperature: float = Field(default=0.2, ge=0, le=2)
    # Sampling seed for every sketch call (None: random): the same sketch on every run.
    seed: int | None = None
    max_graph_tokens: int = Field(default=3000, ge=256, le=32_000)
    max_doc_tokens: int = Field(default=1500, ge=128, le=32_000)
    strict: bool = True
    max_concurrent: int = Field(default=4, ge=1, le=1000)
    poll_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    lease_seconds: float = Field(default=30.0, gt=0, le=3600)
    sweep_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    max_attempts: int = Field(default=3, ge=1, le=100)
    render_timeout_seconds: float = Field(default=10.0, gt=0, le=600)


class ResponsesConfig(_Strict):
    """The Responses API engine (background responses run on the ``assistants`` workers'
    settings: slots, leases, attempts, poll interval)."""

    # Model calls one response may make while built-in tools (file_search,
    # code_interpreter) run between them; the response ends when it is reached.
    max_model_calls: int = Field(default=16, ge=1, le=1000)
    # How often a followed background stream (GET ?stream=true) looks for new events.
    stream_poll_seconds: float = Field(default=0.1, gt=0, le=60)


class ServerConfig(_Strict):
    """How ``portway serve`` runs: its worker processes, and how it shuts down on SIGTERM
    (readiness first, then a bounded drain)."""

    # Processes sharing the port (`--workers` overrides it); "auto": one per CPU core.
    # Several share state through the database and Redis as separate replicas do.
    workers: Annotated[int, Field(ge=1, le=256)] | Literal["auto"] = 1

    # /health/ready answers 503 this long before the listener closes, so a load balancer
    # stops sending first (set it above the balancer's probe interval).
    unready_delay_seconds: float = Field(default=0.0, ge=0, le=600)
    # In-flight requests and streams get this long to finish, then they are cancelled.
    drain_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)


class RequestLogConfig(_Strict):
    """The request log (``GET /v1/admin/requests``): one row per request to a model
    endpoint, written in batches off the hot path, purged after ``retention_days``."""

    enabled: bool = True
    # 0 keeps rows forever.
    retention_days: float = Field(default=30.0, ge=0)
    # Request and response bodies are kept only when this is on, or the key's metadata
    # says ``request_log_bodies: true``; never for zero-retention (no_store) keys.
    bodies: bool = False
    max_body_bytes: int = Field(default=64 * 1024, ge=256, le=16 * 1024 * 1024)
    flush_interval_ms: int = Field(default=200, ge=1, le=60_000)
    max_batch: int = Field(default=500, ge=1)
    # Beyond this many rows waiting for the database, the oldest are dropped (and logged).
    max_queued: int = Field(default=50_000, ge=1)
    purge_interval_seconds: float = Field(default=3600.0, gt=0)


class TelemetryConfig(_Strict):
    """OpenTelemetry traces and GenAI metrics (off by default). With ``exporter: otlp``
    spans and metrics go to ``endpoint`` (OTLP over HTTP); ``none`` keeps them in the
    process (tests read them with the SDK's in-memory exporter)."""

    enabled: bool = False
    exporter: Literal["otlp", "console", "none"] = "otlp"
    endpoint: str | None = None  # default: the exporter's (OTEL_EXPORTER_OTLP_ENDPOINT)
    headers: dict[str, str] = Field(default_factory=dict)
    service_name: str = Field(default="portway", min_length=1)
    sample_ratio: float = Field(default=1.0, ge=0, le=1)
    metrics: bool = True
    metrics_interval_seconds: float = Field(default=60.0, gt=0)


def _default_models() -> list[ModelConfig]:
    return [ModelConfig(name=DEFAULT_LOCAL_MODEL, provider="local")]


class PrivacyConfig(_Strict):
    """Retention of stored content (responses, conversations, threads, files...)."""

    # The default for keys and teams that set none of their own: null keeps content until
    # it is deleted; ``none`` is zero retention for every key; N purges after N days.
    retention: str | None = None
    purge_interval_seconds: float = Field(default=3600.0, gt=0)

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> str | None:
        return parse_retention(value)


class AuditConfig(_Strict):
    """The hash-chained audit log (``security/audit_chain.py``)."""

    enabled: bool = True
    # Also one record per model call: who, model, endpoint, status, guardrails that fired.
    requests: bool = False
    # Checkpoints are signed with the server key's ``audit-checkpoints`` key.
    checkpoint_interval_seconds: float = Field(default=300.0, gt=0)
    flush_interval_ms: int = Field(default=200, ge=1)


class Settings(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    master_key: SecretStr | None = None
    database_url: str = "sqlite:///./.portway/portway.db"
    redis_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # ``json``: one JSON object per line with the request id and trace id (never content).
    log_format: Literal["text", "json"] = "text"
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    server: ServerConfig = Field(default_factory=ServerConfig)
    models: list[ModelConfig] = Field(default_factory=_default_models)
    # Per model group (or virtual model) routing: see portway.routing.config.
    router: dict[str, RouteEntry] = Field(default_factory=dict)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    keys: KeysConfig = Field(default_factory=KeysConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    request_log: RequestLogConfig = Field(default_factory=RequestLogConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    accounting: AccountingConfig = Field(default_factory=AccountingConfig)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    system_principal: SystemPrincipalConfig = Field(default_factory=SystemPrincipalConfig)
    files: FilesConfig = Field(default_factory=FilesConfig)
    retrieval: RetrievalConfig = Field(default_factory=RetrievalConfig)
    code_interpreter: CodeInterpreterConfig = Field(default_factory=CodeInterpreterConfig)
    assistants: AssistantsConfig = Field(default_factory=AssistantsConfig)
    batches: BatchesConfig = Field(default_factory=BatchesConfig)
    responses: ResponsesConfig = Field(default_factory=ResponsesConfig)
    sketch: SketchConfig = Field(default_factory=SketchConfig)
    # Guardrails for every model (a model entry's own ``guardrails`` overrides them).
    guardrails: list[GuardrailPolicy] = Field(default_factory=list)
    # The one server secret (``security/server_keys.py``): audit checkpoints are signed and
    # pseudonym maps and compaction items sealed with keys derived from it. At least 32
    # characters (``PORTWAY_SERVER_KEY``); unset: read from ``server_key_file`` (unset:
    # ``server.key`` next to the SQLite database, else ``./.portway``), generated there
    # (mode 0600) on first start. Replicas sharing a database must share it.
    server_key: SecretStr | None = None
    server_key_file: str | None = None
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)

    @field_validator("models")
    @classmethod
    def _at_least_one_model(cls, models: list[ModelConfig]) -> list[ModelConfig]:
        if not models:
            raise ValueError("declare at least one model")
        return models

    @model_validator(mode="after")
    def _router_names_known_models(self) -> Settings:
        check_router_references(self.router, {model.name for model in self.models})
        return self

    @model_validator(mode="after")
    def _summarizers_are_declared_models(self) -> Settings:
        names = {model.name for model in self.models}
        for index, model in enumerate(self.models):
            summarizer = model.context.summarizer_model if model.context else None
            if summarizer is not None and summarizer not in names:
                raise ValueError(
                    f"models[{index}].context.summarizer_model: {summarizer!r} is not a "
                    "declared model"
                )
        return self

    @model_validator(mode="after")
    def _cache_refers_to_declared_models(self) -> Settings:
        names = {model.name for model in self.models}
        for pattern in self.cache.models:
            if not any(fnmatchcase(name, pattern) for name in names):
                raise ValueError(f"cache.models.{pattern}: matches no declared model")
        embedding_model = self.cache.semantic.embedding_model
        if embedding_model != "local" and embedding_model not in names:
            raise ValueError(
                f"cache.semantic.embedding_model: {embedding_model!r} is neither 'local' "
                "nor a declared model"
            )
        uses_redis = self.cache.backend == "redis" or self.cache.semantic.index == "redis"
        if self.cache.enabled and uses_redis and not self.redis_url:
            raise ValueError("cache.backend/cache.semantic.index: 'redis' needs redis_url")
        return self

    @field_validator("master_key", "server_key")
    @classmethod
    def _blank_key_means_none(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and not key.get_secret_value().strip():
            return None
        return key


def expand_env(value: Any, environ: Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` references in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {key: expand_env(item, environ) for key, item in value.items()}
    if isinstance(value, list):
        return [expand_env(item, environ) for item in value]
    if not isinstance(value, str):
        return value
    whole = _ENV_REFERENCE.fullmatch(value)
    if whole and whole.group(2) is None and whole.group(1) not in environ:
        return None
    return _ENV_REFERENCE.sub(lambda m: environ.get(m.group(1), m.group(2) or ""), value)


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Top-level scalar settings from ``PORTWAY_<NAME>`` variables."""
    overrides: dict[str, Any] = {}
    for name, field in Settings.model_fields.items():
        if field.default_factory is not None:  # sections and lists, not scalars
            continue
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None:
            overrides[name] = raw if raw != "" or field.default is None else field.default
    return overrides


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, str) and "=" in part:
            continue  # a tagged-union branch, not a key
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(root)"


def format_validation_error(
    error: ValidationError, source: str, prefix: tuple[int | str, ...] = ()
) -> str:
    """One line per error, naming the key by its path (``prefix``: where the validated
    value sits in the settings)."""
    lines = [f"invalid configuration in {source}:"]
    for item in error.errors():
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        if not item["loc"] and item["type"] == "value_error":
            # Whole-settings checks name the key in their message already.
            lines.append(f"  {message.removeprefix('Value error, ')}")
            continue
        lines.append(f"  {_location((*prefix, *item['loc']))}: {message}")
    return "\n".join(lines)


def load_settings(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Read the YAML file (``path`` or ``$PORTWAY_CONFIG``, optional) and the environment."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(ENV_PREFIX + "CONFIG") or None
    raw: dict[str, Any] = {}
    source = "environment"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must be a mapping of settings")
        raw = expand_env(loaded or {}, environ)
    raw = {key: value for key, value in raw.items() if value is not None} | _env_overrides(environ)
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
