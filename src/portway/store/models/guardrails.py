"""Guardrail state kept for stored conversations: each one's pseudonym map, sealed
(AES-GCM, ``security.sealing``), never in clear."""

from __future__ import annotations

from sqlalchemy import Float, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base


class PseudonymMapRow(Base):
    __tablename__ = "guardrail_pseudonyms"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    # What the map belongs to: a thread, a conversation or a stored response (by id).
    owner: Mapped[str] = mapped_column(String(200), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[float] = mapped_column(Float)
