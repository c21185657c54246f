"""The audit log's repository: chained appends serialised on the head row, reads, checkpoints.

Appends from any number of processes keep one chain: each append transaction first
updates the head row (``audit_head``, id 1), which takes PostgreSQL's row lock or
SQLite's write lock before anything is read, so the next appender waits for this
commit and then reads the new head. There is no update or delete of records here (and
the database's triggers refuse them).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update

from portway.security.audit_chain import AuditRecord, Checkpoint, record_hash
from portway.store.database import Database
from portway.store.models import AuditCheckpointRow, AuditHeadRow, AuditRecordRow

HEAD_ID = 1


@dataclass(frozen=True, slots=True)
class NewRecord:
    """What an appender supplies; sequence and hashes are assigned in the transaction."""

    created_us: int
    kind: str
    action: str
    actor: str
    subject: str | None
    details: str


# AuditRecord's fields, in its order (rows are built positionally).
_FIELDS = (
    "seq",
    "created_us",
    "kind",
    "action",
    "actor",
    "subject",
    "details",
    "prev_hash",
    "hash",
)


class AuditRepository:
    def __init__(self, database: Database) -> None:
        self._db = database

    async def append(self, records: Sequence[NewRecord]) -> list[AuditRecord]:
        """Chain ``records`` after the current head in one transaction."""
        if not records:
            return []
        head = AuditHeadRow.__table__
        async with self._db.write() as connection:
            # The write comes first: it takes the lock before the head is read.
            await connection.execute(
                update(head).where(head.c.id == HEAD_ID).values(updated_at=time.time())
            )
            seq, prev = (
                await connection.execute(
                    select(head.c.seq, head.c.hash).where(head.c.id == HEAD_ID)
                )
            ).one()
            chained: list[AuditRecord] = []
            for new in records:
                seq += 1
                digest = record_hash(
                    seq,
                    new.created_us,
                    new.kind,
                    new.action,
                    new.actor,
                    new.subject,
                    new.details,
                    prev,
                )
                chained.append(
                    AuditRecord(
                        seq,
                        new.created_us,
                        new.kind,
                        new.action,
                        new.actor,
                        new.subject,
                        new.details,
                        prev,
                        digest,
                    )
                )
                prev = digest
            await connection.execute(
                insert(AuditRecordRow.__table__),
                [
                    {
                        "seq": r.seq,
                        "created_us": r.created_us,
                        "kind": r.kind,
                        "action": r.action,
                        "actor": r.actor,
                        "subject": r.subject,
                        "details": r.details,
                        "prev_hash": r.prev_hash,
                        "hash": r.hash,
                    }
                    for r in chained
                ],
            )
            await connection.execute(
                update(head).where(head.c.id == HEAD_ID).values(seq=seq, hash=prev)
            )
        return chained

    async def head(self) -> tuple[int, str]:
        async with self._db.session() as session:
            row = await session.get(AuditHeadRow, HEAD_ID)
        if row is None:
            raise RuntimeError("the audit_head row is missing (database not migrated?)")
        return row.seq, row.hash

    async def page(
        self,
        after: int = 0,
        limit: int = 100,
        *,
        kind: str | None = None,
        action: str | None = None,
        descending: bool = False,
        before: int | None = None,
    ) -> list[AuditRecord]:
        table = AuditRecordRow.__table__
        query = select(*(table.c[name] for name in _FIELDS))
        if after:
            query = query.where(table.c.seq > after)
        if before is not None:
            query = query.where(table.c.seq < before)
        if kind is not None:
            query = query.where(table.c.kind == kind)
        if action is not None:
            query = query.where(table.c.action == action)
        order = table.c.seq.desc() if descending else table.c.seq
        # Core rows, not ORM objects: ``verify`` reads every record of the log.
        async with self._db.connect() as connection:
            rows = await connection.execute(query.order_by(order).limit(limit))
            return [AuditRecord(*row) for row in rows]

    async def scan(self, page_size: int = 1000) -> AsyncIterator[AuditRecord]:
        """Every record in sequence order, a page at a time."""
        after = 0
        while True:
            page = await self.page(after, page_size)
            for record in page:
                yield record
            if len(page) < page_size:
                return
            after = page[-1].seq

    async def count(self) -> int:
        async with self._db.session() as session:
            return int(await session.scalar(select(func.count()).select_from(AuditRecordRow)) or 0)

    async def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        async with self._db.write() as connection:
            await connection.execute(
                insert(AuditCheckpointRow.__table__).values(
                    seq=checkpoint.seq,
                    hash=checkpoint.hash,
                    created_us=checkpoint.created_us,
                    key_id=checkpoint.key_id,
                    signature=checkpoint.signature,
                )
            )

    async def checkpoints(self) -> list[Checkpoint]:
        async with self._db.session() as session:
            rows = (
                await session.scalars(select(AuditCheckpointRow).order_by(AuditCheckpointRow.seq))
            ).all()
        return [Checkpoint(r.seq, r.hash, r.created_us, r.key_id, r.signature) for r in rows]

    async def last_checkpoint_seq(self) -> int:
        async with self._db.session() as session:
            return int(await session.scalar(select(func.max(AuditCheckpointRow.seq))) or 0)
