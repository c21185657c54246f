"""Everything keys, limits, budgets and the ledger need, built once from the settings.

``Accounting.build`` returns the bundle; ``Accounting.stages`` the stages it contributes to
the pipeline, outermost first: usage recorder, key rate limits, budget reservation (the
cache and the router go after them). The stages take the ``UsageEstimator`` the
composition root built over the router's routes (``services.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from portway.accounting.budgets import BudgetStage
from portway.accounting.estimate import UsageEstimator
from portway.accounting.leases import BudgetLeases
from portway.accounting.ledger import LedgerWriter, UsageRecord, default_journal_dir
from portway.accounting.pricing import PricingCatalog
from portway.accounting.recorder import UsageRecorder
from portway.accounting.tokenizer import TokenizerService
from portway.config import Settings
from portway.keys.service import KeyService
from portway.limits.base import Limit, RateLimiter
from portway.limits.gate import DeploymentGate
from portway.limits.memory import MemoryRateLimiter
from portway.limits.stage import KeyRateLimitStage
from portway.pipeline.base import Stage
from portway.routing.catalog import ModelCatalog
from portway.store import Database
from portway.store.budgets import BudgetRepository
from portway.store.keys import KeyRepository
from portway.store.usage import UsageRepository


def build_limiter(settings: Settings) -> RateLimiter:
    backend = settings.limits.backend
    if backend == "auto":
        backend = "redis" if settings.redis_url else "memory"
    if backend == "redis":
        from portway.config import ConfigError
        from portway.limits.redis import RedisRateLimiter

        if not settings.redis_url:
            raise ConfigError("limits.backend: `redis` needs redis_url to be set")
        return RedisRateLimiter.from_url(settings.redis_url)
    return MemoryRateLimiter()


@dataclass
class Accounting:
    settings: Settings
    tokenizer: TokenizerService
    pricing: PricingCatalog
    keys: KeyService
    budgets: BudgetRepository
    leases: BudgetLeases
    usage: UsageRepository
    ledger: LedgerWriter
    limiter: RateLimiter
    gate: DeploymentGate

    @classmethod
    def build(
        cls,
        settings: Settings,
        catalog: ModelCatalog,
        database: Database,
    ) -> Accounting:
        """The accounting services (keys, budgets, ledger, limiter, gate)."""
        tokenizer = TokenizerService(settings.accounting.estimate_factor)
        for deployment in catalog.deployments:
            model_tokenizer = deployment.provider.tokenizer()
            if model_tokenizer is not None:
                tokenizer.register(deployment.config.upstream_model, model_tokenizer)
        pricing = PricingCatalog(catalog.deployments)
        budgets = BudgetRepository(database)
        leases = BudgetLeases(budgets, settings.budgets)
        usage = UsageRepository(database)
        limiter = build_limiter(settings)
        gate = DeploymentGate(
            limiter,
            {d.id: Limit(d.config.rpm, d.config.tpm) for d in catalog.deployments},
            max_depth=settings.limits.queue_max_depth,
            max_wait=settings.limits.queue_max_wait_seconds,
        )
        return cls(
            settings=settings,
            tokenizer=tokenizer,
            pricing=pricing,
            keys=KeyService(
                KeyRepository(database),
                budgets,
                cache_ttl=settings.keys.cache_ttl_seconds,
                default_retention=settings.privacy.retention,
            ),
            budgets=budgets,
            leases=leases,
            usage=usage,
            ledger=LedgerWriter(
                usage,
                settings.ledger,
                Path(settings.ledger.journal_dir)
                if settings.ledger.journal_dir
                else default_journal_dir(settings.database_url),
                instance=leases.holder,
                on_committed=leases.committed,
                on_recovered=budgets.release_holders,
            ),
            limiter=limiter,
            gate=gate,
        )

    def stages(
        self,
        estimator: UsageEstimator,
        observers: Sequence[Callable[[UsageRecord], None]] = (),
    ) -> list[Stage]:
        """Ledger, key limits and budget stages; ``observers`` see every ledger record."""
        return [
            UsageRecorder(
                self.ledger,
                self.pricing,
                estimator,
                budgets=self.leases,
                record_rows=self.settings.ledger.enabled,
                observers=observers,
            ),
            KeyRateLimitStage(self.limiter),
            BudgetStage(self.leases, self.pricing, estimator),
        ]

    async def start(self, catalog: ModelCatalog) -> None:
        # BPE files load lazily (first count that needs one, in a thread): loading them at
        # start-up would hold the GIL for ~1 s while the first requests arrive.
        await self.ledger.start()
        await self.leases.start()

    async def settle_now(self) -> None:
        """Commit this process's settlements and give back its spare budget slices, so
        budget figures read next are exact for it (admin reads; other processes' slices
        show as ``reserved`` until their next sync)."""
        await self.ledger.flush()
        await self.leases.give_back()

    async def close(self) -> None:
        await self.gate.close()
        await self.ledger.close()  # commits the settlements first ...
        await self.leases.close()  # ... so the leases can be given back whole
        await self.limiter.close()
