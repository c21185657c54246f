"""The system principal: who Portway's own model calls run as when no caller is behind them.

Contract: ``SystemPrincipal.principal`` is a principal of kind ``system`` named by
``system_principal.key_id``, with the configured ``rpm``/``tpm``; after ``start`` it also
carries its key budget (``max_budget`` per ``budget_period``, written from the settings
at start-up). It may use every model: the operator chose the models it calls.
"""

from __future__ import annotations

from dataclasses import replace

from portway.accounting.pricing import nanos
from portway.config import SystemPrincipalConfig
from portway.keys.service import budget_ref
from portway.security.principal import Principal
from portway.store.budgets import BudgetRepository


class SystemPrincipal:
    def __init__(self, config: SystemPrincipalConfig, budgets: BudgetRepository) -> None:
        self._config = config
        self._budgets = budgets
        self._principal = Principal(
            kind="system", key_id=config.key_id, rpm=config.rpm, tpm=config.tpm
        )

    @property
    def principal(self) -> Principal:
        return self._principal

    async def start(self) -> None:
        """Write the configured budget (after the database is migrated)."""
        config = self._config
        if config.max_budget is None:
            return
        state = await self._budgets.set(
            "key", config.key_id, nanos(config.max_budget), config.budget_period
        )
        self._principal = replace(self._principal, budgets=(budget_ref(state),))
