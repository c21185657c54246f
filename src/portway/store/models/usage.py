"""The usage ledger: one row per request, written in batches by ``accounting.ledger``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, String
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


# Upper bounds (ms) of the latency bins of ``usage_buckets``; one more bin is open-ended.
LATENCY_BINS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
LATENCY_COLUMNS = tuple(f"lat_{index:02d}" for index in range(len(LATENCY_BINS_MS) + 1))


class UsageBucketRow(Base):
    """All calls of one minute (``span`` 60) or one hour (``span`` 3600), summed as the
    ledger writes them: the console's overview reads these, never the ledger itself."""

    __tablename__ = "usage_buckets"
    __table_args__ = tuple(
        Column(name, Integer, nullable=False, default=0) for name in LATENCY_COLUMNS
    )

    span: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    cache_hits: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_nanos: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageDailyRow(Base):
    """One UTC day's calls per key, user, team and model ("" for none), summed as the
    ledger writes them: usage reports over whole days read these instead of the ledger."""

    __tablename__ = "usage_daily"

    day: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    model: Mapped[str] = mapped_column(String(200), primary_key=True)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    cache_hits: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cached_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    cost_saved_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
