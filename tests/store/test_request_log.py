"""The request log repository on SQLite and PostgreSQL: pages, cursors, purges, and the
SQLite query plans that keep a page one index range scan with a million rows."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import text

from portway.config import RequestLogConfig
from portway.observability.request_log import RequestLog
from portway.store import Database
from portway.store.request_log import RequestLogFilter, RequestLogRepository


def row(request_id: str, created_at: float, **fields: Any) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "created_at": created_at,
        "endpoint": "/v1/chat/completions",
        "key_id": "key-a",
        "key_name": None,
        "user_id": None,
        "team_id": None,
        "model": "m",
        "deployment": "m",
        "provider": "openai",
        "status_code": 200,
        "latency_ms": 5.0,
        "ttft_ms": None,
        "overhead_ms": 1.0,
        "stream": False,
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "cost_nanos": 0,
        "cache": None,
        "attempts": 1,
        "guardrails": None,
        "error_type": None,
        "error_code": None,
        "error_message": None,
        "trace_id": None,
        "spans": None,
        "request_body": None,
        "response_body": None,
        **fields,
    }


async def test_retention_purges_old_entries_only(database: Database) -> None:
    log = RequestLog(RequestLogRepository(database), RequestLogConfig(retention_days=1))
    now = time.time()
    await log.repository.append(
        [row(f"old-{i}", now - 2 * 86400 - i) for i in range(7)]
        + [row(f"new-{i}", now - 3600 + i) for i in range(3)]
    )
    assert await log.purge(now) == 7
    rows, has_more = await log.repository.page(RequestLogFilter(), 50)
    assert [r["request_id"] for r in rows] == ["new-2", "new-1", "new-0"] and not has_more
    assert await log.purge(now) == 0
    forever = RequestLog(RequestLogRepository(database), RequestLogConfig(retention_days=0))
    assert await forever.purge(now + 365 * 86400) == 0


async def test_entries_with_one_timestamp_page_by_insertion_order(database: Database) -> None:
    repository = RequestLogRepository(database)
    await repository.append([row(f"same-{i}", 1000.0) for i in range(5)])
    first, more = await repository.page(RequestLogFilter(), 2)
    second, _ = await repository.page(RequestLogFilter(), 2, after=first[-1]["request_id"])
    assert [r["request_id"] for r in first] == ["same-4", "same-3"] and more
    assert [r["request_id"] for r in second] == ["same-2", "same-1"]
    assert await repository.get("same-0", key_id="other") is None
    found = await repository.get("same-0", key_id="key-a")
    assert found is not None and found["request_id"] == "same-0"


async def test_sqlite_pages_are_index_scans(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = Database(f"sqlite:///{tmp_path}/plan.db")
    await database.start()
    try:
        cases = {
            "": "ix_request_log_time",
            "WHERE key_id = 'k'": "ix_request_log_key_time",
            "WHERE team_id = 't'": "ix_request_log_team_time",
            "WHERE model = 'm'": "ix_request_log_model_time",
            "WHERE created_at >= 1 AND created_at < 2": "ix_request_log_time",
            # A cursor (``after``): a seek into the index, not a scan from the newest row.
            "WHERE created_at <= 5 AND (created_at < 5 OR seq < 9)": "(created_at<?)",
        }
        async with database.connect() as connection:
            for where, index in cases.items():
                plan = (
                    await connection.execute(
                        text(
                            "EXPLAIN QUERY PLAN SELECT seq FROM request_log "
                            f"{where} ORDER BY created_at DESC, seq DESC LIMIT 51"
                        )
                    )
                ).all()
                details = " ".join(str(step[-1]) for step in plan)
                assert index in details, (where, details)
                assert "TEMP B-TREE" not in details, (where, details)
    finally:
        await database.close()
