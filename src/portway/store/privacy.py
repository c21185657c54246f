"""Privacy repositories: content owners (what is stored for whom) and team policies."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from portway.store.database import Database
from portway.store.models import ContentOwnerRow, TeamPolicyRow


@dataclass(frozen=True, slots=True)
class ContentOwner:
    """A stored object holding content, and whom it was stored for."""

    kind: str
    object_id: str
    tenant: str
    key_id: str | None
    team_id: str | None
    user_id: str | None
    created_at: float


async def insert_owner(connection: AsyncConnection, owner: ContentOwner) -> None:
    """Record ``owner`` inside the caller's transaction (the object's own insert)."""
    await connection.execute(ContentOwnerRow.__table__.insert(), [asdict(owner)])


def _owner(row: ContentOwnerRow) -> ContentOwner:
    return ContentOwner(
        row.kind, row.object_id, row.tenant, row.key_id, row.team_id, row.user_id, row.created_at
    )


class ContentOwnerRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def add(self, owner: ContentOwner) -> None:
        async with self._db.write() as connection:
            await insert_owner(connection, owner)

    async def of_user(self, user: str, limit: int = 1000) -> list[ContentOwner]:
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ContentOwnerRow)
                .where(ContentOwnerRow.user_id == user)
                .order_by(ContentOwnerRow.created_at)
                .limit(limit)
            )
            return [_owner(row) for row in rows.all()]

    async def older_than(
        self, before: float, after: float = 0.0, limit: int = 1000
    ) -> list[ContentOwner]:
        """Objects created before ``before`` (oldest first), from ``after`` on."""
        async with self._db.session() as session:
            rows = await session.scalars(
                select(ContentOwnerRow)
                .where(ContentOwnerRow.created_at < before, ContentOwnerRow.created_at >= after)
                .order_by(ContentOwnerRow.created_at)
                .limit(limit)
            )
            return [_owner(row) for row in rows.all()]

    async def forget(self, owners: Sequence[ContentOwner]) -> None:
        if not owners:
            return
        async with self._db.write() as connection:
            for owner in owners:
                await connection.execute(
                    delete(ContentOwnerRow).where(
                        ContentOwnerRow.kind == owner.kind,
                        ContentOwnerRow.object_id == owner.object_id,
                    )
                )

    async def forget_missing(self, kind: str, object_ids: Sequence[str]) -> None:
        """Drop rows of objects already deleted another way (by their API)."""
        if not object_ids:
            return
        async with self._db.write() as connection:
            await connection.execute(
                delete(ContentOwnerRow).where(
                    ContentOwnerRow.kind == kind,
                    or_(*(ContentOwnerRow.object_id == oid for oid in object_ids)),
                )
            )


@dataclass(frozen=True, slots=True)
class TeamPolicy:
    team_id: str
    retention: str | None
    updated_at: float


class TeamPolicyRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, team_id: str) -> TeamPolicy | None:
        async with self._db.session() as session:
            row = await session.get(TeamPolicyRow, team_id)
        return TeamPolicy(row.team_id, row.retention, row.updated_at) if row else None

    async def set(self, team_id: str, retention: str | None) -> TeamPolicy:
        now = time.time()
        values = {"retention": retention, "updated_at": now}
        async with self._db.write() as connection:  # writes first (see store/README.md)
            changed = await connection.execute(
                update(TeamPolicyRow).where(TeamPolicyRow.team_id == team_id).values(**values)
            )
            if not changed.rowcount:  # type: ignore[attr-defined]
                await connection.execute(insert(TeamPolicyRow).values(team_id=team_id, **values))
        return TeamPolicy(team_id, retention, now)

    async def list(self) -> list[TeamPolicy]:
        async with self._db.session() as session:
            rows = await session.scalars(select(TeamPolicyRow).order_by(TeamPolicyRow.team_id))
            return [TeamPolicy(r.team_id, r.retention, r.updated_at) for r in rows.all()]

    async def retentions(self) -> dict[str, str | None]:
        return {policy.team_id: policy.retention for policy in await self.list()}
