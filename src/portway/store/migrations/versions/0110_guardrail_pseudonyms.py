"""guardrail_pseudonyms: each stored conversation's sealed pseudonym map

Revision ID: 0110
Revises: 0080
Create Date: 2026-12-01 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0110"
down_revision = "0100"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guardrail_pseudonyms",
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "owner"),
    )


def downgrade() -> None:
    op.drop_table("guardrail_pseudonyms")
