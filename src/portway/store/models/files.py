"""Files, vector stores, their files and batches, and the indexed chunks.

Every object row carries the ``tenant`` that owns it (``Principal.tenant``); reads filter by
it. The full-text index over ``vector_store_chunks.text`` is not declared here: it differs
per backend (an FTS5 table + triggers on SQLite, a GIN expression index on PostgreSQL), is
created by hand-written DDL in migration ``0020`` and named ``fts_*`` so autogenerate skips
it (see ``store/migrate.py::include_name``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from portway.store.base import Base

# BIGINT ids on PostgreSQL; SQLite only aliases the rowid (which FTS5 needs) for INTEGER.
_RowId = BigInteger().with_variant(Integer(), "sqlite")


class FileRow(Base):
    __tablename__ = "files"
    __table_args__ = (Index("ix_files_tenant_created", "tenant", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)


class VectorStoreRow(Base):
    __tablename__ = "vector_stores"
    __table_args__ = (Index("ix_vector_stores_tenant_created", "tenant", "created_at", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(256), default="")
    description: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[float] = mapped_column(Float)
    last_active_at: Mapped[float] = mapped_column(Float)
    expires_after_days: Mapped[int | None] = mapped_column(Integer)
    store_metadata: Mapped[dict[str, str] | None] = mapped_column("metadata", JSON)


class VectorStoreFileRow(Base):
    """A file attached to a vector store; ``status`` moves in_progress → completed | failed."""

    __tablename__ = "vector_store_files"
    __table_args__ = (
        Index("ix_vector_store_files_store_created", "vector_store_id", "created_at", "file_id"),
        Index("ix_vector_store_files_file", "file_id"),
        Index("ix_vector_store_files_batch", "batch_id"),
    )

    vector_store_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("vector_stores.id", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("files.id", ondelete="CASCADE"), primary_key=True
    )
    tenant: Mapped[str] = mapped_column(String(200))
    batch_id: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error_message: Mapped[str | None] = mapped_column(Text)
    usage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    chunk_size_tokens: Mapped[int] = mapped_column(Integer)
    chunk_overlap_tokens: Mapped[int] = mapped_column(Integer)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class FileBatchRow(Base):
    """A batch of files added together; its counts and status derive from its files."""

    __tablename__ = "vector_store_file_batches"
    __table_args__ = (Index("ix_vector_store_file_batches_store", "vector_store_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    vector_store_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("vector_stores.id", ondelete="CASCADE")
    )
    tenant: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)
    cancelled_at: Mapped[float | None] = mapped_column(Float)


class ChunkRow(Base):
    """One chunk of a file's text in one vector store; ``embedding`` is float32 bytes."""

    __tablename__ = "vector_store_chunks"
    __table_args__ = (Index("ix_vector_store_chunks_store_file", "vector_store_id", "file_id"),)

    id: Mapped[int] = mapped_column(_RowId, primary_key=True, autoincrement=True)
    vector_store_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("vector_stores.id", ondelete="CASCADE")
    )
    file_id: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
