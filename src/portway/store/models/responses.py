"""The Responses and Conversations APIs: stored responses, conversations and their items.

Every row carries the ``tenant`` that owns it (``Principal.tenant``); reads filter by it.
A response's body is stored as rendered (OpenAI's ``Response`` object, tool results
included); its input items and a conversation's items share one table, keyed by their
``owner`` (the response's or the conversation's id) and kept in insertion order (``seq``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base
from portway.store.models.jobs import LeasedJob

_Seq = BigInteger().with_variant(Integer(), "sqlite")
_ID = 64
_TENANT = 200


class ResponseRow(LeasedJob, Base):
    __tablename__ = "responses"
    __table_args__ = (Index("ix_responses_status_seq", "status", "seq"),)

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(_ID), unique=True)
    tenant: Mapped[str] = mapped_column(String(_TENANT))
    created_at: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(200))
    previous_response_id: Mapped[str | None] = mapped_column(String(_ID))
    conversation_id: Mapped[str | None] = mapped_column(String(_ID))
    background: Mapped[bool] = mapped_column(Boolean, default=False)
    # The Response object as rendered, with every tool result (``include`` filters them).
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    include: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Background responses: the request, who asked (its key is looked up again before the
    # work starts); the worker's lease and attempts come from ``LeasedJob``.
    request: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    principal: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Wider than ``LeasedJob``'s: this table was created with it (a schema stays as migrated).
    owner: Mapped[str | None] = mapped_column(String(200))


class ConversationRow(Base):
    __tablename__ = "conversations"

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(_ID), unique=True)
    tenant: Mapped[str] = mapped_column(String(_TENANT))
    created_at: Mapped[float] = mapped_column(Float)
    meta: Mapped[dict[str, str]] = mapped_column("metadata", JSON, default=dict)


class ItemRow(Base):
    """An item of a response's input or of a conversation (``owner`` is its id)."""

    __tablename__ = "response_items"
    __table_args__ = (Index("ix_response_items_owner_seq", "owner", "seq"),)

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(_ID))
    tenant: Mapped[str] = mapped_column(String(_TENANT))
    owner: Mapped[str] = mapped_column(String(_ID))
    created_at: Mapped[float] = mapped_column(Float)
    item: Mapped[dict[str, Any]] = mapped_column(JSON)


class ResponseEventRow(Base):
    """A background response's stream event (``number`` = its ``sequence_number``), kept so
    its stream can be resumed (``starting_after``) from any process."""

    __tablename__ = "response_events"
    __table_args__ = (Index("ix_response_events_response_number", "response_id", "number"),)

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    response_id: Mapped[str] = mapped_column(String(_ID))
    number: Mapped[int] = mapped_column(Integer)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
