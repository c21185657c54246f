"""Who is calling: the principal every request is attributed to."""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Literal

PrincipalKind = Literal["anonymous", "master", "virtual_key"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    key_id: str | None = None
    user: str | None = None
    team: str | None = None
    allowed_models: tuple[str, ...] | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        """Master key, or an open server (no master key configured)."""
        return self.kind in ("master", "anonymous")

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
