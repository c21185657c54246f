"""The ``Services`` object: everything a request needs, built once at start-up."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portway.accounting.estimate import UsageEstimator
from portway.accounting.services import Accounting
from portway.assistants.builtin import BuiltinTool
from portway.assistants.code_interpreter import CodeInterpreterTool
from portway.assistants.runtime import Assistants
from portway.batches.wiring import Batches
from portway.cache.factory import build_cache
from portway.cache.stage import CacheStage
from portway.config import Settings
from portway.context.policy import ContextPolicy
from portway.context.sealing import PURPOSE as COMPACTION_PURPOSE
from portway.context.sealing import CompactionSealer
from portway.context.stage import ContextStage
from portway.context.wiring import build_compactor
from portway.guardrails.policy import Policies
from portway.guardrails.registry import GuardrailRegistry
from portway.guardrails.stage import GuardrailStage
from portway.guardrails.vault import PURPOSE as VAULT_PURPOSE
from portway.guardrails.vault import PseudonymVault
from portway.observability.metrics import Metrics
from portway.observability.service import Observability
from portway.pipeline.base import CallContext, Stage
from portway.pipeline.client import ModelClient
from portway.pipeline.service import Pipeline
from portway.privacy.erasers import build_erasers
from portway.privacy.request_log import RequestLogBodies
from portway.privacy.service import PrivacyService
from portway.privacy.stage import ZeroRetentionStage
from portway.protocol.chat import ChatCompletionDict
from portway.providers.registry import ProviderRegistry
from portway.responses.batch_lines import URL as RESPONSES_URL
from portway.responses.batch_lines import ResponseLines
from portway.responses.runtime import Responses
from portway.retention import Retention
from portway.retrieval.wiring import Retrieval
from portway.routing.catalog import ModelCatalog
from portway.routing.router import Router
from portway.routing.state import build_breaker_store
from portway.security.audit_chain import canonical_json
from portway.security.audit_log import AuditLog
from portway.security.audit_stage import AuditStage
from portway.security.auth import Authenticator, KeyAuthenticator
from portway.security.server_keys import key_path, load_server_key
from portway.security.system import SystemPrincipal
from portway.sketch.wiring import Sketches
from portway.store import Database
from portway.store.engine import sqlite_file
from portway.store.privacy import ContentOwnerRepository, TeamPolicyRepository
from portway.store.pseudonyms import PseudonymStore

logger = logging.getLogger(__name__)


def _model_cards(catalog: ModelCatalog, router: Router, created: int) -> dict[str, dict[str, Any]]:
    cards: dict[str, dict[str, Any]] = {}
    for deployment in catalog.deployments:
        cards.setdefault(
            deployment.name,
            {
                "id": deployment.name,
                "object": "model",
                "created": created,
                "owned_by": deployment.config.provider,
            },
        )
    for name in router.virtual_models:
        cards[name] = {"id": name, "object": "model", "created": created, "owned_by": "portway"}
    return cards


class CacheStaleAnswers:
    """The cache's expired answers as the router's ``StaleAnswerSource`` (degradation)."""

    def __init__(self, cache: CacheStage) -> None:
        self._cache = cache

    async def stale_answer(self, ctx: CallContext) -> ChatCompletionDict | None:
        stale = await self._cache.lookup_stale(ctx)
        return stale.completion() if stale is not None else None


@dataclass
class Services:
    settings: Settings
    catalog: ModelCatalog
    authenticator: Authenticator
    # The one door: HTTP endpoints call it directly, Portway's own calls through `models`.
    pipeline: Pipeline
    models: ModelClient
    system: SystemPrincipal
    metrics: Metrics
    router: Router
    database: Database
    accounting: Accounting
    retrieval: Retrieval
    assistants: Assistants
    batches: Batches
    responses: Responses
    sketches: Sketches
    observability: Observability
    audit: AuditLog
    privacy: PrivacyService
    model_cards: dict[str, dict[str, Any]] = field(default_factory=dict)
    cache: CacheStage | None = None
    # file_search / code_interpreter by type; the run engine reads it on every call.
    builtin_tools: dict[str, BuiltinTool] = field(default_factory=dict)
    # Set on SIGTERM (``portway.serving``): /health/ready answers 503 from then on.
    draining: bool = False

    @classmethod
    def build(cls, settings: Settings, registry: ProviderRegistry | None = None) -> Services:
        """Compose the services from settings; raises ``ConfigError`` for bad provider names."""
        registry = registry or ProviderRegistry()
        catalog = ModelCatalog.from_configs(settings.models, registry, settings.accounting)
        master_key = settings.master_key.get_secret_value() if settings.master_key else None
        database = Database(settings.database_url, shared=settings.server.workers != 1)
        # Read (or generated) once: every key Portway signs or seals with derives from it.
        server_key = load_server_key(settings)
        accounting = Accounting.build(settings, catalog, database)
        # Stages that make model calls of their own (the classifier, the cache's embedder)
        # reach them through the pipeline they are part of: it is assembled below.
        pipeline = Pipeline()
        system = SystemPrincipal(settings.system_principal, accounting.budgets)
        models = ModelClient(pipeline, system)
        cache = build_cache(settings, catalog, models)
        router = Router(
            catalog,
            settings.router,
            store=build_breaker_store(settings.redis_url),
            gate=accounting.gate,
            stale_source=CacheStaleAnswers(cache) if cache else None,
            classify=models.ask,
            count_text=accounting.tokenizer.count_text,
        )
        metrics = Metrics(router.names())
        # Budgets and limits bound a call by the router's own routes, never a copy of them.
        estimator = UsageEstimator(accounting.tokenizer, catalog, settings.accounting, router)
        # Always present: a key's own list may turn guardrails on (a pass-through otherwise).
        guardrails = GuardrailStage(
            Policies.build(settings, GuardrailRegistry()),
            lambda action: metrics.guardrail_action(action.guardrail, action.action),
            PseudonymVault(PseudonymStore(database), server_key.sealer(VAULT_PURPOSE)),
        )
        audit = AuditLog.build(settings.audit, database, server_key)
        # Summaries and retrieval of older turns: the context stage's, the Responses
        # API's compaction and the runs' ``summarize`` truncation share one.
        compactor = build_compactor(settings, database, estimator, models)
        # Outermost first: the audit record of the call (metadata only, when configured),
        # the zero-retention check, accounting (ledger, limits, budget), then the
        # guardrails (what is cached and sent upstream is the redacted request), context
        # fitting, the cache (keyed on the prompt that is sent), then the router.
        stages: list[Stage] = [
            AuditStage(audit),
            ZeroRetentionStage(),
            *accounting.stages(estimator, observers=(metrics.observe,)),
            guardrails,
            ContextStage(ContextPolicy.from_models(settings.models), estimator, compactor),
            *([cache] if cache else []),
            router,
        ]
        # The one prompt counter: every stage that needs a call's prompt size asks it.
        pipeline.assemble(stages, estimator.count_prompt)
        retrieval = Retrieval.build(settings, database, catalog, models)
        builtin_tools: dict[str, BuiltinTool] = {retrieval.file_search.type: retrieval.file_search}
        if settings.code_interpreter.enabled:
            code_interpreter = CodeInterpreterTool(
                settings.code_interpreter, retrieval.files, _protected_paths(settings)
            )
            builtin_tools[code_interpreter.type] = code_interpreter

        def known_model(name: str) -> bool:
            return name in catalog or name in router.virtual_models

        responses = Responses.build(
            settings,
            database,
            models,
            catalog,
            builtin_tools,
            accounting.tokenizer,
            accounting.keys,
            known_model=known_model,
            compactor=compactor,
            compaction_sealer=CompactionSealer(server_key.sealer(COMPACTION_PURPOSE)),
        )
        observability = Observability(settings, database)
        privacy = PrivacyService(
            ContentOwnerRepository(database),
            TeamPolicyRepository(database),
            accounting.keys.keys,
            build_erasers(database, retrieval.files),
            settings.privacy,
            audit,
            cache,
        )
        # Request bodies in the request log are content: user deletion and retention.
        privacy.register(
            RequestLogBodies(
                observability.request_log.repository, observability.request_log.writer.flush
            )
        )
        return cls(
            settings=settings,
            catalog=catalog,
            authenticator=KeyAuthenticator(
                master_key, accounting.keys, Retention.of(settings.privacy.retention)
            ),
            pipeline=pipeline,
            models=models,
            system=system,
            router=router,
            metrics=metrics,
            database=database,
            accounting=accounting,
            retrieval=retrieval,
            assistants=Assistants.build(
                settings,
                database,
                models,
                catalog,
                builtin_tools,
                retrieval.thread_stores,
                accounting.keys,
                accounting.tokenizer,
            ),
            batches=Batches.build(
                settings,
                database,
                models,
                retrieval.files,
                accounting.keys,
                served={RESPONSES_URL: ResponseLines(responses.responses)},
            ),
            responses=responses,
            sketches=Sketches.build(settings, database, models, accounting.keys, known_model),
            observability=observability,
            audit=audit,
            privacy=privacy,
            model_cards=_model_cards(catalog, router, int(time.time())),
            cache=cache,
            builtin_tools=builtin_tools,
        )

    def drain(self) -> None:
        """Shutdown begins (SIGTERM): readiness turns false and no more queued runs,
        responses, batches or sketches are claimed here, so other replicas take them;
        what this process already executes goes on until ``close`` hands it back."""
        self.draining = True
        for workers in (
            self.assistants.workers,
            self.responses.workers,
            self.batches.workers,
            self.sketches.workers,
        ):
            workers.drain()

    async def start(self) -> None:
        if self.settings.master_key is None:
            logger.warning(
                "authentication is OFF: no master key is set, every /v1 call is accepted "
                "(set PORTWAY_MASTER_KEY or master_key in the config to require a key)"
            )
        await self.database.start()
        await self.observability.start()
        await self.audit.start()
        await self.audit.record("config.load", "system", None, settings_digest(self.settings))
        await self.accounting.start(self.catalog)
        await self.system.start()
        await self.retrieval.start()
        code_interpreter = self.builtin_tools.get(CodeInterpreterTool.type)
        if isinstance(code_interpreter, CodeInterpreterTool):
            await code_interpreter.start()
        await self.catalog.start()
        await self.router.start()
        if self.cache is not None:
            await self.cache.start()
        await self.assistants.start()
        await self.batches.start()
        await self.responses.start()
        await self.privacy.start()
        await self.sketches.start()

    async def close(self) -> None:
        await self.sketches.close()
        await self.privacy.close()
        await self.responses.close()
        await self.batches.close()
        await self.assistants.close()
        if self.cache is not None:
            await self.cache.close()
        await self.router.close()
        await self.catalog.close()
        code_interpreter = self.builtin_tools.get(CodeInterpreterTool.type)
        if isinstance(code_interpreter, CodeInterpreterTool):
            await code_interpreter.close()
        await self.retrieval.close()
        await self.accounting.close()
        await self.observability.close()
        await self.audit.close()
        await self.database.close()


def settings_digest(settings: Settings) -> dict[str, Any]:
    """What the audit log keeps of the configuration a process started with: a hash
    (secrets appear masked, so it never holds one) and the declared model names."""
    dumped = canonical_json(settings.model_dump(mode="json"))
    return {
        "sha256": hashlib.sha256(dumped.encode("utf-8")).hexdigest(),
        "models": [model.name for model in settings.models],
    }


def _protected_paths(settings: Settings) -> list[Path]:
    """Portway's own state: no sandbox may bind a directory holding any of it."""
    paths = [Path.cwd(), Path(settings.files.storage_dir)]
    database = sqlite_file(settings.database_url)
    if database is not None:
        paths.append(database)
    if settings.ledger.journal_dir:
        paths.append(Path(settings.ledger.journal_dir))
    if settings.cache.backend == "sqlite":
        paths.append(Path(settings.cache.sqlite_path))
    paths.append(key_path(settings))
    return paths
