"""Assistants v2: assistants, threads, messages, runs and run steps.

Every row carries the ``tenant`` that owns it (``Principal.tenant``); reads filter by it.
``seq`` is the insertion order that cursor pagination walks (ids are random); nested
OpenAI structures (tools, content, step details, ...) are JSON columns stored as sent.
Runs also hold the engine's state: the creator's principal, the worker's lease and the
running token totals.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base
from portway.store.models.jobs import LeasedJob

# BIGINT ids on PostgreSQL; SQLite only auto-increments an INTEGER PRIMARY KEY.
_Seq = BigInteger().with_variant(Integer(), "sqlite")
_ID = 64
_TENANT = 200


class AssistantRow(Base):
    __tablename__ = "assistants"
    __table_args__ = (Index("ix_assistants_tenant_seq", "tenant", "seq"),)

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(_ID), unique=True)
    tenant: Mapped[str] = mapped_column(String(_TENANT))
    created_at: Mapped[float] = mapped_column(Float)
    name: Mapped[str | None] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(512))
    model: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str | None] = mapped_column(Text)
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    tool_resources: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    temperature: Mapped[float | None] = mapped_column(Float)
    top_p: Mapped[float | None] = mapped_column(Float)
    response_format: Mapped[Any] = mapped_column(JSON, nullable=True)
    reasoning_effort: Mapped[str | None] = mapped_column(String(16))


class ThreadRow(Base):
    __tablename__ = "threads"
    __table_args__ = (Index("ix_threads_tenant_seq", "tenant", "seq"),)

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(_ID), unique=True)
    tenant: Mapped[str] = mapped_column(String(_TENANT))
    created_at: Mapped[float] = mapped_column(Float)
    tool_resources: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)


class MessageRow(Base):
    __tablename__ = "thread_messages"
    __table_args__ = (Index("ix_thread_messages_thread_seq", "thread_id", "seq"),)

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(_ID), unique=True)
    tenant: Mapped[str] = mapped_column(String(_TENANT))
    thread_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("threads.id", ondelete="CASCADE")
    )
    created_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    incomplete_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    completed_at: Mapped[float | None] = mapped_column(Float)
    incomplete_at: Mapped[float | None] = mapped_column(Float)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    assistant_id: Mapped[str | None] = mapped_column(String(_ID))
    run_id: Mapped[str | None] = mapped_column(String(_ID), index=True)
    attachments: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)


class RunRow(LeasedJob, Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_thread_seq", "thread_id", "seq"),
        Index("ix_runs_status_seq", "status", "seq"),
    )

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(_ID), unique=True)
    tenant: Mapped[str] = mapped_column(String(_TENANT))
    thread_id: Mapped[str] = mapped_column(
        String(_ID), ForeignKey("threads.id", ondelete="CASCADE")
    )
    assistant_id: Mapped[str] = mapped_column(String(_ID))
    created_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    required_action: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    expires_at: Mapped[float | None] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float)
    cancelled_at: Mapped[float | None] = mapped_column(Float)
    failed_at: Mapped[float | None] = mapped_column(Float)
    completed_at: Mapped[float | None] = mapped_column(Float)
    incomplete_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    model: Mapped[str] = mapped_column(String(200))
    instructions: Mapped[str] = mapped_column(Text, default="")
    tools: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    usage: Mapped[dict[str, int] | None] = mapped_column(JSON)
    temperature: Mapped[float | None] = mapped_column(Float)
    top_p: Mapped[float | None] = mapped_column(Float)
    max_prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    max_completion_tokens: Mapped[int | None] = mapped_column(Integer)
    truncation_strategy: Mapped[dict[str, Any]] = mapped_column(JSON)
    tool_choice: Mapped[Any] = mapped_column(JSON, nullable=True)
    parallel_tool_calls: Mapped[bool] = mapped_column(Boolean, default=True)
    response_format: Mapped[Any] = mapped_column(JSON, nullable=True)
    reasoning_effort: Mapped[str | None] = mapped_column(String(16))
    # Engine state (never shown to clients; the lease columns come from ``LeasedJob``).
    principal: Mapped[dict[str, Any]] = mapped_column(JSON)
    assistant_tool_resources: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    model_calls: Mapped[int] = mapped_column(Integer, default=0)


class RunStepRow(Base):
    __tablename__ = "run_steps"
    __table_args__ = (Index("ix_run_steps_run_seq", "run_id", "seq"),)

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(_ID), unique=True)
    tenant: Mapped[str] = mapped_column(String(_TENANT))
    run_id: Mapped[str] = mapped_column(String(_ID), ForeignKey("runs.id", ondelete="CASCADE"))
    thread_id: Mapped[str] = mapped_column(String(_ID))
    assistant_id: Mapped[str] = mapped_column(String(_ID))
    created_at: Mapped[float] = mapped_column(Float)
    type: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(16))
    step_details: Mapped[dict[str, Any]] = mapped_column(JSON)
    last_error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    expired_at: Mapped[float | None] = mapped_column(Float)
    cancelled_at: Mapped[float | None] = mapped_column(Float)
    failed_at: Mapped[float | None] = mapped_column(Float)
    completed_at: Mapped[float | None] = mapped_column(Float)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)
    usage: Mapped[dict[str, int] | None] = mapped_column(JSON)
    # The chat-level tool calls of this step as the model saw them: [{id, name, arguments,
    # output, citations, created_file_ids}]; rebuilds the model's context on every turn.
    model_calls: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
