"""The usage ledger: one row per request, written in batches by ``accounting.ledger``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base

# BIGINT ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
_RowId = BigInteger().with_variant(Integer(), "sqlite")


class UsageRow(Base):
    __tablename__ = "usage_records"
    __table_args__ = (
        Index("ix_usage_records_key_time", "key_id", "created_at"),
        Index("ix_usage_records_team_time", "team_id", "created_at"),
        Index("ix_usage_records_user_time", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(_RowId, primary_key=True, autoincrement=True)
    record_id: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[float] = mapped_column(Float, index=True)
    request_id: Mapped[str] = mapped_column(String(128))
    endpoint: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str | None] = mapped_column(String(40))
    user_id: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    deployment: Mapped[str | None] = mapped_column(String(200))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_tokens: Mapped[int] = mapped_column(Integer, default=0)
    usage_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    cost_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_saved_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms: Mapped[float] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    status: Mapped[int] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(64))
    cache_status: Mapped[str | None] = mapped_column(String(16))
    context_strategy: Mapped[str | None] = mapped_column(String(16))
    # What fitting the prompt cost (the summarizer's and embedder's calls), in this row
    # as well as in those calls' own rows (endpoint ``context.*``).
    context_cost_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
