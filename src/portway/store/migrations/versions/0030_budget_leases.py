"""budget leases: slices of a budget held by Portway processes

Revision ID: 0030
Revises: 0020
Create Date: 2026-11-27 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contended_at", sa.Float(), nullable=True))
    # Reservations of the per-request scheme have no holder any more: leases replace them.
    op.execute("UPDATE budgets SET reserved_nanos = 0")
    op.create_table(
        "budget_leases",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("budget_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("amount_nanos", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("forfeited_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.id"],
            name=op.f("fk_budget_leases_budget_id_budgets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_leases")),
    )
    with op.batch_alter_table("budget_leases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_budget_leases_budget_id"), ["budget_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_budget_leases_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_budget_leases_holder"), ["holder"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("budget_leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_budget_leases_holder"))
        batch_op.drop_index(batch_op.f("ix_budget_leases_expires_at"))
        batch_op.drop_index(batch_op.f("ix_budget_leases_budget_id"))
    op.drop_table("budget_leases")
    with op.batch_alter_table("budgets", schema=None) as batch_op:
        batch_op.drop_column("contended_at")
