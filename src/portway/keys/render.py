"""Keys and budgets as the admin API, the console and ``portway keys`` show them.

Copying between the wire models (``keys.wire``, ``protocol.admin``) and the store's
records lives here, so the wire models import no store or accounting code.
"""

from __future__ import annotations

import time
from typing import Any

from portway.accounting.pricing import nanos, usd
from portway.keys.service import BudgetSpec
from portway.keys.wire import KeyCreate, KeyObject
from portway.protocol.admin import BudgetObject
from portway.records import OMIT, copy_as
from portway.retention import Retention
from portway.store.budgets import BudgetState
from portway.store.keys import KeyFields, KeyRecord


def key_fields(body: KeyCreate) -> KeyFields:
    """What the store keeps of a key the admin API creates."""
    return copy_as(
        KeyFields,
        body,
        user_id=body.user,
        team_id=body.team,
        allowed_models=tuple(body.models) if body.models is not None else None,
        expires_at=body.expiry(),
    )


def budget_spec(body: KeyCreate) -> BudgetSpec | None:
    """The budget a new key gets, if its creation asks for one."""
    if body.max_budget is None:
        return None
    return BudgetSpec(nanos(body.max_budget), body.budget_period)


def budget_object(budget: BudgetState | None) -> BudgetObject | None:
    if budget is None:
        return None
    return copy_as(
        BudgetObject,
        budget,
        max_budget=usd(budget.limit_nanos),
        period_start=budget.period_start or None,
        spend=usd(budget.spent_nanos),
        reserved=usd(budget.reserved_nanos),
    )


def key_object(key: KeyRecord, secret: str | None = None) -> KeyObject:
    """The key's JSON; ``secret`` only in the answer to create and rotate."""
    return copy_as(
        KeyObject,
        key,
        object="portway.key",
        user=key.user_id,
        team=key.team_id,
        models=list(key.allowed_models) if key.allowed_models is not None else None,
        retention=Retention.of(key.retention).label if key.retention else None,
        created_at=int(key.created_at),
        status=key.status(time.time()),
        budget=budget_object(key.budget),
        key=OMIT if secret is None else secret,
    )


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
