"""The sealed pseudonym maps of stored conversations (``guardrail_pseudonyms``).

Contract: every read and write is scoped by ``tenant``; the blob is opaque here (sealed
by the caller). ``put`` replaces the owner's map.
"""

from __future__ import annotations

from sqlalchemy import Delete, delete, insert, select

from portway.store.database import Database
from portway.store.models.guardrails import PseudonymMapRow


def drop_pseudonyms(tenant: str, owner: str) -> Delete:
    """The statement deleting an owner's map (run in the transaction deleting the owner)."""
    return delete(PseudonymMapRow).where(
        PseudonymMapRow.tenant == tenant, PseudonymMapRow.owner == owner
    )


class PseudonymStore:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def get(self, tenant: str, owner: str) -> bytes | None:
        async with self._db.session() as session:
            found = await session.execute(
                select(PseudonymMapRow.sealed).where(
                    PseudonymMapRow.tenant == tenant, PseudonymMapRow.owner == owner
                )
            )
            return found.scalar_one_or_none()

    async def put(self, tenant: str, owner: str, sealed: bytes, now: float) -> None:
        # Delete then insert in one transaction: the same statement on SQLite and PostgreSQL.
        async with self._db.write() as connection:
            await connection.execute(drop_pseudonyms(tenant, owner))
            await connection.execute(
                insert(PseudonymMapRow),
                [{"tenant": tenant, "owner": owner, "sealed": sealed, "updated_at": now}],
            )

    async def drop(self, tenant: str, owner: str) -> None:
        async with self._db.write() as connection:
            await connection.execute(drop_pseudonyms(tenant, owner))
