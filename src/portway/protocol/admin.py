"""Wire models of the admin API (`/v1/admin/...`): budgets and team policies.

Keys have their own home: ``portway.keys.wire``.
"""

from __future__ import annotations

from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_validator

from portway.periods import Period
from portway.retention import parse_retention


class AdminModel(BaseModel):
    """An admin request: unknown fields are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid")


class TeamPolicySet(AdminModel):
    """``PUT /v1/admin/teams/{team}``: the team's retention (null: the server default)."""

    retention: str | int | None = None

    @field_validator("retention", mode="before")
    @classmethod
    def _retention(cls, value: object) -> str | None:
        return parse_retention(value)


class BudgetSet(AdminModel):
    max_budget: float = Field(ge=0)
    period: Period = "monthly"


class BudgetObject(TypedDict):
    """A budget as the admin API shows it (alone, or as a key's ``budget``)."""

    scope: str
    subject: str
    max_budget: float
    period: str
    period_start: int | None
    spend: float
    reserved: float
