"""Context-window state: conversation summaries and the older turns indexed for retrieval.

A summary is keyed by the hash of what it summarizes (``context.prefixes``): the tenant,
the summarizer model and the turns it covers, so the same prefix is summarized once and
every later turn of the conversation (resent by a chat client, or rebuilt from a stored
response chain or thread) finds it again. ``chain`` names the stored conversation, thread
or response the summary was made for, when there is one. Turns are indexed per
``scope`` (the hash of a conversation's first turn and tenant) and ``position``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base

_Seq = BigInteger().with_variant(Integer(), "sqlite")


class ContextSummaryRow(Base):
    __tablename__ = "context_summaries"

    seq: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    tenant: Mapped[str] = mapped_column(String(200))
    model: Mapped[str] = mapped_column(String(200))
    # How many turns (units) and messages of the conversation the summary covers.
    units: Mapped[int] = mapped_column(Integer)
    messages: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(Text)
    chain: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)


class ContextTurnRow(Base):
    __tablename__ = "context_turns"
    __table_args__ = (Index("ix_context_turns_scope_position", "scope", "position", unique=True),)

    id: Mapped[int] = mapped_column(_Seq, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(64))
    tenant: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[float] = mapped_column(Float)
