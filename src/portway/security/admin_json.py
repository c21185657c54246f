"""Keys and budgets as the admin API and ``portway keys``/``portway budgets`` show them.

Copying between the admin wire models (``protocol.admin``) and the store's records lives
here, so the wire models import no store or accounting code.
"""

from __future__ import annotations

import time
from typing import Any

from portway.accounting.pricing import nanos, usd
from portway.protocol.admin import KeyCreate
from portway.retention import Retention
from portway.security.keys import BudgetSpec
from portway.store.budgets import BudgetState
from portway.store.keys import KeyFields, KeyRecord


def key_fields(body: KeyCreate) -> KeyFields:
    """What the store keeps of a key the admin API creates."""
    return KeyFields(
        name=body.name,
        user_id=body.user,
        team_id=body.team,
        allowed_models=tuple(body.models) if body.models is not None else None,
        rpm=body.rpm,
        tpm=body.tpm,
        priority=body.priority,
        no_store=body.no_store,
        retention=body.retention,  # type: ignore[arg-type]
        metadata=body.metadata,
        expires_at=body.expiry(),
    )


def budget_spec(body: KeyCreate) -> BudgetSpec | None:
    """The budget a new key gets, if its creation asks for one."""
    if body.max_budget is None:
        return None
    return BudgetSpec(nanos(body.max_budget), body.budget_period)


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
        "retention": Retention.of(key.retention).label if key.retention else None,
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


def key_summary(key: KeyRecord) -> dict[str, Any]:
    """What the audit log keeps of a key change: identity and policy, never the secret."""
    return {
        "name": key.name,
        "user": key.user_id,
        "team": key.team_id,
        "models": list(key.allowed_models) if key.allowed_models is not None else None,
        "retention": key.retention,
        "rpm": key.rpm,
        "tpm": key.tpm,
    }
