"""Budgets for a key, user or team, and the slices of them leased to Portway processes.

Money is an integer number of nano-dollars (1e-9 USD) so concurrent reservations compare
exactly; the cheapest token prices (a few cents per million) are still whole numbers.
``reserved_nanos`` is the sum of the budget's ``budget_leases`` amounts: what running
processes may still spend without asking again (see ``store.budgets``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base


class BudgetRow(Base):
    __tablename__ = "budgets"
    __table_args__ = (UniqueConstraint("scope", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(String(200))
    limit_nanos: Mapped[int] = mapped_column(BigInteger)
    period: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[int] = mapped_column(BigInteger, default=0)
    spent_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_nanos: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[float] = mapped_column(Float)
    # When a process last could not get the slice it asked for: holders give back
    # what they do not use at their next sync.
    contended_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)


class BudgetLeaseRow(Base):
    """A slice of a budget held by one Portway process (``holder``) until ``expires_at``
    (renewed while the process lives)."""

    __tablename__ = "budget_leases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    budget_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("budgets.id", ondelete="CASCADE"), index=True
    )
    holder: Mapped[str] = mapped_column(String(64), index=True)
    amount_nanos: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[float] = mapped_column(Float, index=True)
    # Set when the lease expired and was charged in full: the row stays as a tombstone
    # (see ``store.budgets``).
    forfeited_at: Mapped[float | None] = mapped_column(Float, nullable=True, default=None)
