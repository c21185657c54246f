"""sketches: the architecture sketcher's sketches and their versions

Revision ID: 0090
Revises: 0110
Create Date: 2026-12-01 17:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0090"
down_revision = "0075"
branch_labels = None
depends_on = None

_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sketches",
        sa.Column("seq", _Seq, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("questions", sa.JSON(), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=True),
        sa.Column("pending", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("principal", sa.JSON(), nullable=False),
        sa.Column("owner", sa.String(length=120), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_sketches")),
        sa.UniqueConstraint("id", name=op.f("uq_sketches_id")),
    )
    with op.batch_alter_table("sketches", schema=None) as batch_op:
        batch_op.create_index("ix_sketches_tenant_seq", ["tenant", "seq"], unique=False)
        batch_op.create_index("ix_sketches_status_seq", ["status", "seq"], unique=False)
    op.create_table(
        "sketch_versions",
        sa.Column("sketch_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("graph", sa.JSON(), nullable=False),
        sa.Column("narrative", sa.JSON(), nullable=False),
        sa.Column("design", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("node_id", sa.String(length=64), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("repaired", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["sketch_id"],
            ["sketches.id"],
            name=op.f("fk_sketch_versions_sketch_id_sketches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("sketch_id", "number", name=op.f("pk_sketch_versions")),
    )


def downgrade() -> None:
    op.drop_table("sketch_versions")
    with op.batch_alter_table("sketches", schema=None) as batch_op:
        batch_op.drop_index("ix_sketches_status_seq")
        batch_op.drop_index("ix_sketches_tenant_seq")
    op.drop_table("sketches")
