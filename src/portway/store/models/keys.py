"""Virtual keys: the secret is stored only as its SHA-256 hex digest."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base


class VirtualKeyRow(Base):
    __tablename__ = "virtual_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(24))
    name: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(200), index=True)
    team_id: Mapped[str | None] = mapped_column(String(200), index=True)
    allowed_models: Mapped[list[str] | None] = mapped_column(JSON)
    rpm: Mapped[int | None] = mapped_column(Integer)
    tpm: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    no_store: Mapped[bool] = mapped_column(Boolean, default=False)
    # "none" (zero retention, then ``no_store`` is true too) or days; null: team/default.
    retention: Mapped[str | None] = mapped_column(String(16))
    key_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)
    rotated_at: Mapped[float | None] = mapped_column(Float)
