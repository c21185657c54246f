"""responses, their items and stream events, conversations

Revision ID: 0050
Revises: 0040
Create Date: 2026-12-01 15:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0050"
down_revision = "0040"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_conversations")),
        sa.UniqueConstraint("id", name=op.f("uq_conversations_id")),
    )
    op.create_table(
        "response_items",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("item", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_response_items")),
    )
    with op.batch_alter_table("response_items", schema=None) as batch_op:
        batch_op.create_index("ix_response_items_owner_seq", ["owner", "seq"], unique=False)
    op.create_table(
        "responses",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("previous_response_id", sa.String(length=64), nullable=True),
        sa.Column("conversation_id", sa.String(length=64), nullable=True),
        sa.Column("background", sa.Boolean(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("include", sa.JSON(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=True),
        sa.Column("principal", sa.JSON(), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_responses")),
        sa.UniqueConstraint("id", name=op.f("uq_responses_id")),
    )
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.create_index("ix_responses_status_seq", ["status", "seq"], unique=False)
    op.create_table(
        "response_events",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("response_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("event", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_response_events")),
    )
    with op.batch_alter_table("response_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_response_events_response_number", ["response_id", "number"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("response_events", schema=None) as batch_op:
        batch_op.drop_index("ix_response_events_response_number")
    op.drop_table("response_events")
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index("ix_responses_status_seq")
    op.drop_table("responses")
    with op.batch_alter_table("response_items", schema=None) as batch_op:
        batch_op.drop_index("ix_response_items_owner_seq")
    op.drop_table("response_items")
    op.drop_table("conversations")
