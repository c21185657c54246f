"""Wire models of ``/v1/admin/keys``: create and update requests, the key object."""

from __future__ import annotations

import time
from typing import Any, Literal, NotRequired, TypedDict

from pydantic import Field, field_validator, model_validator

from portway.periods import Period
from portway.protocol.admin import AdminModel, BudgetObject
from portway.retention import parse_retention

MAX_INT32 = 2**31 - 1


class KeyCreate(AdminModel):
    name: str | None = Field(default=None, max_length=200)
    user: str | None = Field(default=None, max_length=200)
    team: str | None = Field(default=None, max_length=200)
    models: list[str] | None = None
    rpm: int | None = Field(default=None, ge=1, le=MAX_INT32)
    tpm: int | None = Field(default=None, ge=1, le=MAX_INT32)
    max_budget: float | None = Field(default=None, ge=0)
    budget_period: Period = "monthly"
    priority: int = 0
    no_store: bool = False
    # "none" (zero retention) or days; unset: the team's, else the server default.
    retention: str | int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    expires_at: float | None = None
    expires_in: float | None = Field(default=None, gt=0)

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> str | None:
        return parse_retention(value)

    @model_validator(mode="after")
    def _no_store_agrees(self) -> KeyCreate:
        if self.no_store and self.retention not in (None, "none"):
            raise ValueError("no_store: true is zero retention; it contradicts retention")
        return self

    @model_validator(mode="after")
    def _one_expiry(self) -> KeyCreate:
        if self.expires_at is not None and self.expires_in is not None:
            raise ValueError("give expires_at or expires_in, not both")
        return self

    def expiry(self) -> float | None:
        if self.expires_in is not None:
            return time.time() + self.expires_in
        return self.expires_at


class KeyUpdate(AdminModel):
    """Only the fields present change; ``max_budget: null`` removes the key's budget."""

    name: str | None = None
    user: str | None = None
    team: str | None = None
    models: list[str] | None = None
    rpm: int | None = Field(default=None, ge=1, le=MAX_INT32)
    tpm: int | None = Field(default=None, ge=1, le=MAX_INT32)
    max_budget: float | None = Field(default=None, ge=0)
    budget_period: Period | None = None
    priority: int | None = None
    no_store: bool | None = None
    retention: str | int | None = None
    metadata: dict[str, Any] | None = None
    expires_at: float | None = None

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> str | None:
        return parse_retention(value)

    def changes(self) -> dict[str, Any]:
        renamed = {"user": "user_id", "team": "team_id", "models": "allowed_models"}
        skip = {"max_budget", "budget_period", "no_store"}
        changes = {
            renamed.get(name, name): getattr(self, name)
            for name in self.model_fields_set
            if name not in skip
        }
        # ``no_store`` is the older spelling of zero retention (false: inherit again).
        if "no_store" in self.model_fields_set and "retention" not in changes:
            changes["retention"] = "none" if self.no_store else None
        return changes


class KeyObject(TypedDict):
    """A key as the admin API, the console and ``portway keys`` show it (never its secret,
    except as ``key`` in the answer to create and rotate)."""

    object: Literal["portway.key"]
    id: str
    prefix: str
    name: str | None
    user: str | None
    team: str | None
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    priority: int
    no_store: bool
    retention: str | None
    metadata: dict[str, Any]
    created_at: int
    expires_at: float | None
    revoked_at: float | None
    rotated_at: float | None
    status: str
    budget: BudgetObject | None
    key: NotRequired[str]
