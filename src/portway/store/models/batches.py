"""The Batch API: batches and the results of their lines.

A batch row carries what the client sees (status, timestamps, counts, file ids) and the
worker state (the creator's principal, the lease). A line's row is written once, when
the line has its result (the JSON line of the output or error file): the lines of the
input file without a row are the ones still to execute, so a resumed batch repeats none
of the lines it finished.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base
from portway.store.models.jobs import LeasedJob

_Seq = BigInteger().with_variant(Integer(), "sqlite")
_ID = 64
_TENANT = 200


class BatchRow(LeasedJob, Base):
    __tablename__ = "batches"
    __table_args__ = (
        Index("ix_batches_tenant_seq", "tenant", "seq"),
        Index("ix_batches_status_seq", "status", "seq"),
    )

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(_ID), unique=True)
    tenant: Mapped[str] = mapped_column(String(_TENANT))
    endpoint: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(_ID))
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(200))
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    output_file_id: Mapped[str | None] = mapped_column(String(_ID))
    error_file_id: Mapped[str | None] = mapped_column(String(_ID))
    created_at: Mapped[float] = mapped_column(Float)
    in_progress_at: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    finalizing_at: Mapped[float | None] = mapped_column(Float)
    completed_at: Mapped[float | None] = mapped_column(Float)
    failed_at: Mapped[float | None] = mapped_column(Float)
    expired_at: Mapped[float | None] = mapped_column(Float)
    cancelling_at: Mapped[float | None] = mapped_column(Float)
    cancelled_at: Mapped[float | None] = mapped_column(Float)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    output_expires_after: Mapped[int | None] = mapped_column(Integer)
    # Worker state (never shown to clients; the lease columns come from ``LeasedJob``).
    principal: Mapped[dict[str, Any]] = mapped_column(JSON)


class BatchLineRow(Base):
    __tablename__ = "batch_lines"

    batch_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("batches.id", ondelete="CASCADE"), primary_key=True
    )
    # 0-based position among the input file's request lines.
    line: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ok: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
