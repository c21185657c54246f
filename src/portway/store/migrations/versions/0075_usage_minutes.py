"""usage_minutes: the ledger summed per minute (the console's overview charts)

Revision ID: 0075
Revises: 0060
Create Date: 2026-12-01 17:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0075"
down_revision = "0060"
branch_labels = None
depends_on = None

# Upper bounds (ms) of the latency bins, as in ``store.models.usage`` (a migration is frozen
# in time: it does not import the models).
BOUNDS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
LATENCY_COLUMNS = [f"lat_{index:02d}" for index in range(len(BOUNDS) + 1)]


def upgrade() -> None:
    op.create_table(
        "usage_minutes",
        sa.Column("minute", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("cache_hits", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in LATENCY_COLUMNS),
        sa.PrimaryKeyConstraint("minute", name=op.f("pk_usage_minutes")),
    )
    # The ledger written so far, summed the same way the ledger writer sums new rows.
    # PostgreSQL's CAST rounds, SQLite's truncates (created_at is never negative).
    if op.get_bind().dialect.name == "postgresql":
        minute = "CAST(FLOOR(created_at / 60) AS BIGINT) * 60"
    else:
        minute = "CAST(created_at / 60 AS INTEGER) * 60"
    bins = " + ".join(f"(CASE WHEN latency_ms < {bound} THEN 0 ELSE 1 END)" for bound in BOUNDS)
    latency_sums = ", ".join(
        f"SUM(CASE WHEN {bins} = {index} THEN 1 ELSE 0 END)"
        for index in range(len(LATENCY_COLUMNS))
    )
    op.execute(
        "INSERT INTO usage_minutes (minute, requests, errors, cache_hits, prompt_tokens,"
        f" completion_tokens, cost_nanos, {', '.join(LATENCY_COLUMNS)})"
        f" SELECT {minute}, COUNT(*),"
        " SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN cache_status IN ('hit', 'semantic-hit') THEN 1 ELSE 0 END),"
        " SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos),"
        f" {latency_sums}"
        f" FROM usage_records GROUP BY {minute}"
    )


def downgrade() -> None:
    op.drop_table("usage_minutes")
