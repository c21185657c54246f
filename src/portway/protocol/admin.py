"""Wire models of the admin API (`/v1/admin/...`): keys, budgets, usage."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from portway.accounting.pricing import nanos, usd
from portway.store.budgets import BudgetState
from portway.store.keys import KeyFields, KeyRecord

MAX_INT32 = 2**31 - 1
BudgetPeriod = Literal["daily", "weekly", "monthly", "total"]


class _Admin(BaseModel):
    model_config = ConfigDict(extra="forbid")


class KeyCreate(_Admin):
    name: str | None = Field(default=None, max_length=200)
    user: str | None = Field(default=None, max_length=200)
    team: str | None = Field(default=None, max_length=200)
    models: list[str] | None = None
    rpm: int | None = Field(default=None, ge=1, le=MAX_INT32)
    tpm: int | None = Field(default=None, ge=1, le=MAX_INT32)
    max_budget: float | None = Field(default=None, ge=0)
    budget_period: BudgetPeriod = "monthly"
    priority: int = 0
    no_store: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)
    expires_at: float | None = None
    expires_in: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyCreate:
        if self.expires_at is not None and self.expires_in is not None:
            raise ValueError("give expires_at or expires_in, not both")
        return self

    def expiry(self) -> float | None:
        if self.expires_in is not None:
            return time.time() + self.expires_in
        return self.expires_at

    def fields(self) -> KeyFields:
        return KeyFields(
            name=self.name,
            user_id=self.user,
            team_id=self.team,
            allowed_models=tuple(self.models) if self.models is not None else None,
            rpm=self.rpm,
            tpm=self.tpm,
            priority=self.priority,
            no_store=self.no_store,
            metadata=self.metadata,
            expires_at=self.expiry(),
        )


class KeyUpdate(_Admin):
    """Only the fields present change; ``max_budget: null`` removes the key's budget."""

    name: str | None = None
    user: str | None = None
    team: str | None = None
    models: list[str] | None = None
    rpm: int | None = Field(default=None, ge=1, le=MAX_INT32)
    tpm: int | None = Field(default=None, ge=1, le=MAX_INT32)
    max_budget: float | None = Field(default=None, ge=0)
    budget_period: BudgetPeriod | None = None
    priority: int | None = None
    no_store: bool | None = None
    metadata: dict[str, Any] | None = None
    expires_at: float | None = None

    def changes(self) -> dict[str, Any]:
        renamed = {"user": "user_id", "team": "team_id", "models": "allowed_models"}
        skip = {"max_budget", "budget_period"}
        return {
            renamed.get(name, name): getattr(self, name)
            for name in self.model_fields_set
            if name not in skip
        }


class BudgetSet(_Admin):
    max_budget: float = Field(ge=0)
    period: BudgetPeriod = "monthly"


def budget_json(budget: BudgetState | None) -> dict[str, Any] | None:
    if budget is None:
        return None
    return {
        "scope": budget.scope,
        "subject": budget.subject,
        "max_budget": usd(budget.limit_nanos),
        "period": budget.period,
        "period_start": budget.period_start or None,
        "spend": usd(budget.spent_nanos),
        "reserved": usd(budget.reserved_nanos),
    }


def key_json(key: KeyRecord, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "object": "portway.key",
        "id": key.id,
        "prefix": key.prefix,
        "name": key.name,
        "user": key.user_id,
        "team": key.team_id,
        "models": list(key.allowed_models) if key.allowed_models is not None else None,
        "rpm": key.rpm,
        "tpm": key.tpm,
        "priority": key.priority,
        "no_store": key.no_store,
        "metadata": key.metadata,
        "created_at": int(key.created_at),
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
        "rotated_at": key.rotated_at,
        "status": key.status(time.time()),
        "budget": budget_json(key.budget),
    }
    if secret is not None:
        body["key"] = secret
    return body


__all__ = ["BudgetSet", "KeyCreate", "KeyUpdate", "budget_json", "key_json", "nanos"]
