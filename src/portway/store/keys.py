"""The virtual key repository: create, read, update, revoke, rotate; lookup by secret hash."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, select, update

from portway.records import copy_as
from portway.store.budgets import BudgetRepository, BudgetState
from portway.store.database import Database
from portway.store.models import TeamPolicyRow, VirtualKeyRow


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored virtual key (never its secret)."""

    id: str
    prefix: str
    name: str | None
    user_id: str | None
    team_id: str | None
    allowed_models: tuple[str, ...] | None
    rpm: int | None
    tpm: int | None
    priority: int
    no_store: bool
    metadata: dict[str, Any]
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    rotated_at: float | None
    budget: BudgetState | None = None
    # The key's own retention label ("none" or days); None: its team's or the default.
    retention: str | None = None

    def status(self, now: float) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


@dataclass(frozen=True, slots=True)
class KeyFields:
    """Everything a caller may set on a key (create and update)."""

    name: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    allowed_models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    priority: int = 0
    no_store: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)
    expires_at: float | None = None
    retention: str | None = None  # "none" or days; ``no_store`` alone means "none"


@dataclass(frozen=True, slots=True)
class KeyWithBudgets:
    """What authentication needs: the key and every budget that applies to it."""

    key: KeyRecord
    budgets: tuple[BudgetState, ...]
    team_retention: str | None = None


def _record(row: VirtualKeyRow, budget: BudgetState | None = None) -> KeyRecord:
    return copy_as(
        KeyRecord,
        row,
        allowed_models=tuple(row.allowed_models) if row.allowed_models is not None else None,
        metadata=dict(row.key_metadata or {}),
        budget=budget,
    )


def _row(fields: KeyFields, **identity: Any) -> VirtualKeyRow:
    """A new key's row: ``identity`` holds what is not a ``KeyFields`` field (id, secret)."""
    retention = fields.retention or ("none" if fields.no_store else None)
    return copy_as(
        VirtualKeyRow,
        fields,
        allowed_models=list(fields.allowed_models) if fields.allowed_models is not None else None,
        no_store=retention == "none",
        retention=retention,
        key_metadata=dict(fields.metadata),
        **identity,
    )


class KeyRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def create(
        self,
        key_id: str,
        secret_hash: str,
        prefix: str,
        fields: KeyFields,
        budget: tuple[int, str] | None = None,
    ) -> KeyRecord:
        """Insert a key and, when ``budget`` (limit nano-dollars, period) is given, its budget."""
        now = time.time()
        row = _row(fields, id=key_id, secret_hash=secret_hash, prefix=prefix, created_at=now)
        async with self._db.session() as session:
            session.add(row)
            await session.flush()
            if budget is not None:
                await BudgetRepository.upsert_in(session, "key", key_id, budget[0], budget[1], now)
        return await self.get(key_id)  # type: ignore[return-value]

    async def get(self, key_id: str) -> KeyRecord | None:
        async with self._db.session() as session:
            row = await session.get(VirtualKeyRow, key_id)
            if row is None:
                return None
            budgets = await BudgetRepository.find_in(session, [("key", key_id)])
        return _record(row, budgets[0] if budgets else None)

    async def list(
        self,
        *,
        user_id: str | None = None,
        team_id: str | None = None,
        include_revoked: bool = True,
        limit: int = 1000,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[KeyRecord]:
        order = (VirtualKeyRow.created_at, VirtualKeyRow.id)
        query = select(VirtualKeyRow).order_by(
            *(column.desc() for column in order) if newest_first else order
        )
        if user_id is not None:
            query = query.where(VirtualKeyRow.user_id == user_id)
        if team_id is not None:
            query = query.where(VirtualKeyRow.team_id == team_id)
        if not include_revoked:
            query = query.where(VirtualKeyRow.revoked_at.is_(None))
        async with self._db.session() as session:
            rows = (await session.scalars(query.limit(limit).offset(offset))).all()
            budgets = await BudgetRepository.find_in(session, [("key", row.id) for row in rows])
        by_key = {budget.subject: budget for budget in budgets}
        return [_record(row, by_key.get(row.id)) for row in rows]

    async def update(self, key_id: str, changes: dict[str, Any]) -> KeyRecord | None:
        """Apply ``changes`` (``KeyFields`` names); budgets change via ``BudgetRepository``."""
        columns = {("key_metadata" if k == "metadata" else k): v for k, v in changes.items()}
        if "retention" in columns:  # one source of truth: no_store follows retention
            columns["no_store"] = columns["retention"] == "none"
        if columns.get("allowed_models") is not None:
            columns["allowed_models"] = list(columns["allowed_models"])
        async with self._db.session() as session:
            row = await session.get(VirtualKeyRow, key_id)
            if row is None:
                return None
            for name, value in columns.items():
                setattr(row, name, value)
        return await self.get(key_id)

    async def revoke(self, key_id: str) -> KeyRecord | None:
        async with self._db.session() as session:
            await session.execute(
                update(VirtualKeyRow)
                .where(VirtualKeyRow.id == key_id, VirtualKeyRow.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        return await self.get(key_id)

    async def rotate(self, key_id: str, secret_hash: str, prefix: str) -> KeyRecord | None:
        """Replace the secret (the old one stops working); revoked keys cannot be rotated."""
        async with self._db.session() as session:
            result = await session.execute(
                update(VirtualKeyRow)
                .where(VirtualKeyRow.id == key_id, VirtualKeyRow.revoked_at.is_(None))
                .values(secret_hash=secret_hash, prefix=prefix, rotated_at=time.time())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                return None
        return await self.get(key_id)

    async def by_secret_hash(self, secret_hash: str) -> KeyWithBudgets | None:
        """The key for a presented secret plus its key, user and team budgets: one session."""
        return await self._with_budgets(VirtualKeyRow.secret_hash == secret_hash)

    async def by_id(self, key_id: str) -> KeyWithBudgets | None:
        """The key with this id plus its key, user and team budgets (for work done later
        on a key's behalf, such as assistant runs)."""
        return await self._with_budgets(VirtualKeyRow.id == key_id)

    async def _with_budgets(self, condition: ColumnElement[bool]) -> KeyWithBudgets | None:
        async with self._db.session() as session:
            row = (await session.scalars(select(VirtualKeyRow).where(condition))).one_or_none()
            if row is None:
                return None
            subjects: list[tuple[str, str]] = [("key", row.id)]
            if row.user_id:
                subjects.append(("user", row.user_id))
            if row.team_id:
                subjects.append(("team", row.team_id))
            budgets = await BudgetRepository.find_in(session, subjects)
            team_retention = None
            if row.team_id and row.retention is None:
                team = await session.get(TeamPolicyRow, row.team_id)
                team_retention = team.retention if team is not None else None
        own = next((b for b in budgets if b.scope == "key"), None)
        return KeyWithBudgets(_record(row, own), tuple(budgets), team_retention)

    async def ids_of(self, key_ids: Sequence[str]) -> set[str]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(VirtualKeyRow.id).where(VirtualKeyRow.id.in_(list(key_ids)))
            )
            return set(rows.all())
