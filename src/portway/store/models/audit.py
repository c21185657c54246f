"""The audit log: hash-chained records, the chain's head, signed checkpoints.

``audit_records`` and ``audit_checkpoints`` are append-only: no code path updates or
deletes them, and database triggers (migration 0080) reject UPDATE and DELETE. The one
mutable row is ``audit_head`` (id 1): appenders lock it to serialise the chain across
processes, and it names the last record so a truncated tail is detected.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base

_Seq = BigInteger().with_variant(Integer(), "sqlite")


class AuditRecordRow(Base):
    __tablename__ = "audit_records"

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=False)
    created_us: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(String(200))
    # Canonical JSON text (never content): hashed as stored, so no JSON type may reformat it.
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[float] = mapped_column(Float)


class AuditCheckpointRow(Base):
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    created_us: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(String(16))
    signature: Mapped[str] = mapped_column(String(64))
