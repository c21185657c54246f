"""context summaries, older turns indexed for retrieval, what fitting a prompt cost

Revision ID: 0100
Revises: 0070
Create Date: 2026-12-01 17:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0100"
down_revision = "0080"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The turns' full-text index, hand-written per backend and named ``fts_*`` (left alone by
# autogenerate), as the chunks' one (0020): an external-content FTS5 table kept in sync by
# triggers on SQLite, a GIN expression index on PostgreSQL.
_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE fts_context_turns USING fts5(text, content='context_turns', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER fts_context_turns_insert AFTER INSERT ON context_turns BEGIN "
    "INSERT INTO fts_context_turns(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER fts_context_turns_delete AFTER DELETE ON context_turns BEGIN "
    "INSERT INTO fts_context_turns(fts_context_turns, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
)
_SQLITE_FTS_DROP = (
    "DROP TRIGGER IF EXISTS fts_context_turns_delete",
    "DROP TRIGGER IF EXISTS fts_context_turns_insert",
    "DROP TABLE IF EXISTS fts_context_turns",
)
_POSTGRES_FTS = (
    "CREATE INDEX fts_context_turns_tsv ON context_turns USING gin (to_tsvector('english', text))",
)
_POSTGRES_FTS_DROP = ("DROP INDEX IF EXISTS fts_context_turns_tsv",)


def _execute(statements: tuple[str, ...]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "context_summaries",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("chain", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_context_summaries")),
        sa.UniqueConstraint("key", name=op.f("uq_context_summaries_key")),
    )
    op.create_table(
        "context_turns",
        sa.Column("id", _SEQ, autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_context_turns")),
    )
    with op.batch_alter_table("context_turns", schema=None) as batch_op:
        batch_op.create_index("ix_context_turns_scope_position", ["scope", "position"], unique=True)
    if op.get_bind().dialect.name == "postgresql":
        _execute(_POSTGRES_FTS)
    else:
        _execute(_SQLITE_FTS)
    op.add_column(
        "usage_records",
        sa.Column("context_cost_nanos", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("context_cost_nanos")
    if op.get_bind().dialect.name == "postgresql":
        _execute(_POSTGRES_FTS_DROP)
    else:
        _execute(_SQLITE_FTS_DROP)
    with op.batch_alter_table("context_turns", schema=None) as batch_op:
        batch_op.drop_index("ix_context_turns_scope_position")
    op.drop_table("context_turns")
    op.drop_table("context_summaries")
