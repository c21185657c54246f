"""The request log: one row per HTTP request that reached a model endpoint.

Written in batches off the hot path by ``observability.request_log``. The list is read
newest first, so every filter index ends with ``created_at`` (and, implicitly, the row
id), and a page is one index range scan however deep the cursor.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base

_RowId = BigInteger().with_variant(Integer(), "sqlite")


class RequestLogRow(Base):
    __tablename__ = "request_log"
    __table_args__ = (
        Index("ix_request_log_time", "created_at", "seq"),
        Index("ix_request_log_request", "request_id"),
        Index("ix_request_log_key_time", "key_id", "created_at", "seq"),
        Index("ix_request_log_team_time", "team_id", "created_at", "seq"),
        Index("ix_request_log_user_time", "user_id", "created_at", "seq"),
        Index("ix_request_log_model_time", "model", "created_at", "seq"),
    )

    seq: Mapped[int] = mapped_column(_RowId, primary_key=True, autoincrement=True)
    # The x-request-id the client got (a client may send its own, so not unique).
    request_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)
    endpoint: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(40))
    key_name: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(200))
    model: Mapped[str | None] = mapped_column(String(200))
    deployment: Mapped[str | None] = mapped_column(String(200))
    provider: Mapped[str | None] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    overhead_ms: Mapped[float | None] = mapped_column(Float)
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    cache: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    guardrails: Mapped[str | None] = mapped_column(Text)  # JSON list of "name:action"
    error_type: Mapped[str | None] = mapped_column(String(64))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    trace_id: Mapped[str | None] = mapped_column(String(32))
    spans: Mapped[str | None] = mapped_column(Text)  # JSON list of stage/attempt timings
    # Only when the key's (or the server's) setting keeps content: see request_log.bodies.
    request_body: Mapped[str | None] = mapped_column(Text)
    response_body: Mapped[str | None] = mapped_column(Text)
