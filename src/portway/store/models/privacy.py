"""Privacy bookkeeping: who owns each stored piece of content, and teams' retention."""

from __future__ import annotations

from sqlalchemy import Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base


class ContentOwnerRow(Base):
    """One stored object that holds content (a response, thread, file...), with the key,
    team and user it was stored for: what retention purges and user deletion look up."""

    __tablename__ = "content_owners"
    __table_args__ = (
        Index("ix_content_owners_user_id", "user_id"),
        Index("ix_content_owners_created_at", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    object_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str | None] = mapped_column(String(40))
    team_id: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)


class TeamPolicyRow(Base):
    """A team's settings that are not budgets (those live in ``budgets``)."""

    __tablename__ = "team_policies"

    team_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    # "none" (zero retention) or a number of days; null: the server default.
    retention: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[float] = mapped_column(Float)
