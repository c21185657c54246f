"""privacy and audit: key/team retention, content owners, the hash-chained audit log

Revision ID: 0080
Revises: 0060
Create Date: 2026-12-01 17:40:00.000000

The audit tables are append-only in the database too: triggers reject UPDATE and
DELETE on ``audit_records`` and ``audit_checkpoints`` (SQLite and PostgreSQL).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0080"
down_revision = "0070"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_APPEND_ONLY = ("audit_records", "audit_checkpoints")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION portway_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'portway audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql
"""


def _triggers_up() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for table in _APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION portway_audit_append_only()"
            )
            # TRUNCATE bypasses row triggers: refuse it with a statement trigger.
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION portway_audit_append_only()"
            )
        return
    for table in _APPEND_ONLY:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{event.lower()} BEFORE {event} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'portway audit log is append-only'); END"
            )


def _triggers_down() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in _APPEND_ONLY:
        if postgres:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS portway_audit_append_only()")


def upgrade() -> None:
    op.add_column("virtual_keys", sa.Column("retention", sa.String(length=16), nullable=True))
    # Existing zero-retention keys keep their meaning under the new field.
    op.execute("UPDATE virtual_keys SET retention = 'none' WHERE no_store")
    op.create_table(
        "team_policies",
        sa.Column("team_id", sa.String(length=200), nullable=False),
        sa.Column("retention", sa.String(length=16), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_team_policies")),
    )
    op.create_table(
        "content_owners",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=True),
        sa.Column("team_id", sa.String(length=200), nullable=True),
        sa.Column("user_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "object_id", name=op.f("pk_content_owners")),
    )
    with op.batch_alter_table("content_owners") as batch:
        batch.create_index("ix_content_owners_user_id", ["user_id"], unique=False)
        batch.create_index("ix_content_owners_created_at", ["created_at"], unique=False)
    op.create_table(
        "audit_records",
        sa.Column("seq", _SEQ, autoincrement=False, nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_records")),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.create_table(
        "audit_checkpoints",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_checkpoints")),
    )
    # The chain starts at the genesis hash (64 zeros) with sequence 0.
    op.execute(f"INSERT INTO audit_head (id, seq, hash, updated_at) VALUES (1, 0, '{'0' * 64}', 0)")
    _triggers_up()


def downgrade() -> None:
    _triggers_down()
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_head")
    op.drop_table("audit_records")
    with op.batch_alter_table("content_owners") as batch:
        batch.drop_index("ix_content_owners_created_at")
        batch.drop_index("ix_content_owners_user_id")
    op.drop_table("content_owners")
    op.drop_table("team_policies")
    with op.batch_alter_table("virtual_keys") as batch:
        batch.drop_column("retention")
