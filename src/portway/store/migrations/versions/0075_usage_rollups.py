"""ledger rollups: usage_buckets (per minute and hour) and usage_daily (per day, key,
user, team and model), for the console's charts and whole-day usage reports

Revision ID: 0075
Revises: 0110
Create Date: 2026-12-01 17:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0075"
down_revision = "0110"
branch_labels = None
depends_on = None

# Upper bounds (ms) of the latency bins, as in ``store.models.usage`` (a migration is frozen
# in time: it does not import the models).
BOUNDS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000)
LATENCY_COLUMNS = [f"lat_{index:02d}" for index in range(len(BOUNDS) + 1)]
ERRORS = "SUM(CASE WHEN status >= 400 THEN 1 ELSE 0 END)"
CACHE_HITS = "SUM(CASE WHEN cache_status IN ('hit', 'semantic-hit') THEN 1 ELSE 0 END)"


def _floor(expression: str, step: int) -> str:
    """``floor(expression / step)``: PostgreSQL's CAST rounds, SQLite's truncates (and
    created_at is never negative)."""
    if op.get_bind().dialect.name == "postgresql":
        return f"CAST(FLOOR({expression} / {step}) AS BIGINT)"
    return f"CAST({expression} / {step} AS INTEGER)"


def upgrade() -> None:
    op.create_table(
        "usage_buckets",
        sa.Column("span", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("start", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("cache_hits", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in LATENCY_COLUMNS),
        sa.PrimaryKeyConstraint("span", "start", name=op.f("pk_usage_buckets")),
    )
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("team_id", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("cache_hits", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=False),
        sa.Column("cost_saved_nanos", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "key_id", "user_id", "team_id", "model", name=op.f("pk_usage_daily")
        ),
    )
    # The ledger written so far, summed the way the ledger writer sums new rows.
    bins = " + ".join(f"(CASE WHEN latency_ms < {bound} THEN 0 ELSE 1 END)" for bound in BOUNDS)
    latency_sums = ", ".join(
        f"SUM(CASE WHEN {bins} = {index} THEN 1 ELSE 0 END)"
        for index in range(len(LATENCY_COLUMNS))
    )
    for span in (60, 3600):
        start = f"{_floor('created_at', span)} * {span}"
        op.execute(
            "INSERT INTO usage_buckets (span, start, requests, errors, cache_hits,"
            f" prompt_tokens, completion_tokens, cost_nanos, {', '.join(LATENCY_COLUMNS)})"
            f" SELECT {span}, {start}, COUNT(*), {ERRORS}, {CACHE_HITS},"
            f" SUM(prompt_tokens), SUM(completion_tokens), SUM(cost_nanos), {latency_sums}"
            f" FROM usage_records GROUP BY {start}"
        )
    day = _floor("created_at", 86400)
    op.execute(
        "INSERT INTO usage_daily (day, key_id, user_id, team_id, model, requests, errors,"
        " cache_hits, prompt_tokens, completion_tokens, cached_tokens, cost_nanos,"
        " cost_saved_nanos, latency_ms)"
        f" SELECT {day}, COALESCE(key_id, ''), COALESCE(user_id, ''), COALESCE(team_id, ''),"
        f" model, COUNT(*), {ERRORS}, {CACHE_HITS}, SUM(prompt_tokens), SUM(completion_tokens),"
        " SUM(cached_tokens), SUM(cost_nanos), SUM(cost_saved_nanos), SUM(latency_ms)"
        " FROM usage_records"
        f" GROUP BY {day}, COALESCE(key_id, ''), COALESCE(user_id, ''), COALESCE(team_id, ''),"
        " model"
    )


def downgrade() -> None:
    op.drop_table("usage_daily")
    op.drop_table("usage_buckets")
