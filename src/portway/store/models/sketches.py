"""The architecture sketcher: sketches (background jobs with leases) and their versions.

A sketch row is what the client sees (status, progress stage, the current version) plus
the worker state (the creator's principal, the pending operation, the lease). Each
generation or revision that completes adds one immutable version row: the graph, the
model's narrative, the rendered design document and, for a revision, what was asked and
answered.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base
from portway.store.models.jobs import LeasedJob

_Seq = BigInteger().with_variant(Integer(), "sqlite")
_ID = 64
_TENANT = 200


class SketchRow(LeasedJob, Base):
    __tablename__ = "sketches"
    __table_args__ = (
        Index("ix_sketches_tenant_seq", "tenant", "seq"),
        Index("ix_sketches_status_seq", "status", "seq"),
    )

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(_ID), unique=True)
    tenant: Mapped[str] = mapped_column(String(_TENANT))
    status: Mapped[str] = mapped_column(String(24))
    stage: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    questions: Mapped[list[str] | None] = mapped_column(JSON)
    answers: Mapped[list[str] | None] = mapped_column(JSON)
    # What the worker is to do next: {"op": "clarify" | "generate" | "revise", ...}.
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    # Worker state (never shown to clients; the lease columns come from ``LeasedJob``).
    principal: Mapped[dict[str, Any]] = mapped_column(JSON)


class SketchVersionRow(Base):
    __tablename__ = "sketch_versions"

    sketch_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("sketches.id", ondelete="CASCADE"), primary_key=True
    )
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    graph: Mapped[dict[str, Any]] = mapped_column(JSON)
    narrative: Mapped[dict[str, Any]] = mapped_column(JSON)
    design: Mapped[str] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(String(64))
    answer: Mapped[str | None] = mapped_column(Text)
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    repaired: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
