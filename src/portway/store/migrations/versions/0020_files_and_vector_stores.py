"""files, vector stores, chunks and their full-text index

Revision ID: 0020
Revises: 0001
Create Date: 2026-11-25 23:39:33.648064
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0001"
branch_labels = None
depends_on = None


# The full-text index is hand-written per backend and named ``fts_*`` so autogenerate
# leaves it alone (``store/migrate.py::include_name``).
#
# SQLite: an external-content FTS5 table over vector_store_chunks.text, kept in sync by
# triggers (chunks are inserted and deleted, never updated). A later batch migration
# that recreates vector_store_chunks must recreate these triggers.
_SQLITE_FTS = (
    "CREATE VIRTUAL TABLE fts_chunks USING fts5(text, content='vector_store_chunks', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER fts_chunks_insert AFTER INSERT ON vector_store_chunks BEGIN "
    "INSERT INTO fts_chunks(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER fts_chunks_delete AFTER DELETE ON vector_store_chunks BEGIN "
    "INSERT INTO fts_chunks(fts_chunks, rowid, text) VALUES ('delete', old.id, old.text); END",
)
_SQLITE_FTS_DROP = (
    "DROP TRIGGER IF EXISTS fts_chunks_delete",
    "DROP TRIGGER IF EXISTS fts_chunks_insert",
    "DROP TABLE IF EXISTS fts_chunks",
)
# PostgreSQL: a GIN index on the english tsvector of the chunk text.
_POSTGRES_FTS = (
    "CREATE INDEX fts_chunks_tsv ON vector_store_chunks USING gin (to_tsvector('english', text))",
)
_POSTGRES_FTS_DROP = ("DROP INDEX IF EXISTS fts_chunks_tsv",)


def _execute(statements: tuple[str, ...]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_files")),
    )
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index(
            "ix_files_tenant_created", ["tenant", "created_at", "id"], unique=False
        )

    op.create_table(
        "vector_stores",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_active_at", sa.Float(), nullable=False),
        sa.Column("expires_after_days", sa.Integer(), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vector_stores")),
    )
    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vector_stores_tenant_created", ["tenant", "created_at", "id"], unique=False
        )

    op.create_table(
        "vector_store_chunks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("vector_store_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["vector_store_id"],
            ["vector_stores.id"],
            name=op.f("fk_vector_store_chunks_vector_store_id_vector_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vector_store_chunks")),
    )
    with op.batch_alter_table("vector_store_chunks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vector_store_chunks_store_file", ["vector_store_id", "file_id"], unique=False
        )

    op.create_table(
        "vector_store_file_batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("vector_store_id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("cancelled_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["vector_store_id"],
            ["vector_stores.id"],
            name=op.f("fk_vector_store_file_batches_vector_store_id_vector_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vector_store_file_batches")),
    )
    with op.batch_alter_table("vector_store_file_batches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_vector_store_file_batches_store", ["vector_store_id"], unique=False
        )

    op.create_table(
        "vector_store_files",
        sa.Column("vector_store_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("usage_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("chunk_size_tokens", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap_tokens", sa.Integer(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["files.id"],
            name=op.f("fk_vector_store_files_file_id_files"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["vector_store_id"],
            ["vector_stores.id"],
            name=op.f("fk_vector_store_files_vector_store_id_vector_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("vector_store_id", "file_id", name=op.f("pk_vector_store_files")),
    )
    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.create_index("ix_vector_store_files_batch", ["batch_id"], unique=False)
        batch_op.create_index("ix_vector_store_files_file", ["file_id"], unique=False)
        batch_op.create_index(
            "ix_vector_store_files_store_created",
            ["vector_store_id", "created_at", "file_id"],
            unique=False,
        )

    if op.get_bind().dialect.name == "postgresql":
        _execute(_POSTGRES_FTS)
    else:
        _execute(_SQLITE_FTS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _execute(_POSTGRES_FTS_DROP)
    else:
        _execute(_SQLITE_FTS_DROP)
    with op.batch_alter_table("vector_store_files", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_store_files_store_created")
        batch_op.drop_index("ix_vector_store_files_file")
        batch_op.drop_index("ix_vector_store_files_batch")

    op.drop_table("vector_store_files")
    with op.batch_alter_table("vector_store_file_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_store_file_batches_store")

    op.drop_table("vector_store_file_batches")
    with op.batch_alter_table("vector_store_chunks", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_store_chunks_store_file")

    op.drop_table("vector_store_chunks")
    with op.batch_alter_table("vector_stores", schema=None) as batch_op:
        batch_op.drop_index("ix_vector_stores_tenant_created")

    op.drop_table("vector_stores")
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_tenant_created")

    op.drop_table("files")
