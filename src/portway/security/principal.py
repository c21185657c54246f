"""Who is calling: the principal every request is attributed to."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal

from portway.retention import KEEP, Retention

# "system": Portway's own calls with no caller behind them (see ``security.system``).
PrincipalKind = Literal["anonymous", "master", "virtual_key", "system"]


@dataclass(frozen=True, slots=True)
class BudgetRef:
    """A budget that applies to the caller (its key's, its user's or its team's)."""

    id: int
    scope: Literal["key", "user", "team"]
    subject: str
    limit_nanos: int
    period: str


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    key_id: str | None = None
    name: str | None = None  # the key's display name (request log, console)
    user: str | None = None
    team: str | None = None
    allowed_models: tuple[str, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    rpm: int | None = None
    tpm: int | None = None
    priority: int = 0
    # How long this caller's stored content is kept (key, else team, else the default).
    retention: Retention = KEEP
    expires_at: float | None = None
    budgets: tuple[BudgetRef, ...] = ()

    @property
    def is_admin(self) -> bool:
        """Master key, or an open server (no master key configured)."""
        return self.kind in ("master", "anonymous")

    @property
    def no_store(self) -> bool:
        """Zero retention: none of this caller's content is stored anywhere."""
        return self.retention.zero

    @property
    def tenant(self) -> str:
        """The namespace owning this principal's objects: team, else key, else the server."""
        return self.team or self.key_id or "default"

    def may_use(self, model: str) -> bool:
        if self.allowed_models is None:
            return True
        return any(fnmatchcase(model, pattern) for pattern in self.allowed_models)


ANONYMOUS = Principal(kind="anonymous")
MASTER = Principal(kind="master", key_id="master")
