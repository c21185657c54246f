"""A batch whose completion window closed before its lines ran: it expires, and each line
that did not run is in the error file with ``batch_expired``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import openai

from portway.assistants.principals import principal_snapshot
from portway.security.principal import Principal
from portway.store import Database
from portway.store.batches import BatchStore
from portway.store.models.batches import BatchRow
from tests.batches.support import MODEL, chat_line, file_lines, jsonl, upload, wait_for
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI


async def _insert_expired(database_url: str, file_id: str) -> str:
    """A batch created over a day ago, never picked up (as if no worker had run since)."""
    database = Database(database_url, migrate_on_start=False)
    long_ago = time.time() - 2 * 86400
    row = BatchRow(
        id="batch_expiredtest",
        tenant="default",
        endpoint="/v1/chat/completions",
        input_file_id=file_id,
        completion_window="24h",
        status="validating",
        created_at=long_ago,
        expires_at=long_ago + 86400,
        total=0,
        completed=0,
        failed=0,
        input_tokens=0,
        cached_tokens=0,
        output_tokens=0,
        reasoning_tokens=0,
        meta={},
        principal=principal_snapshot(Principal(kind="anonymous")),
        attempts=0,
    )
    try:
        await BatchStore(database).create(row)
    finally:
        await database.close()
    return row.id


def test_an_expired_batch_writes_batch_expired_lines(
    start_portway: PortwayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    database_url = f"sqlite:///{tmp_path}/portway.db"
    gateway = start_portway(
        {
            "database_url": database_url,
            "models": [fake_model(MODEL, fake_openai.base_url)],
            # Workers look for batches rarely: the test's row is there before the next look.
            "batches": {"poll_interval_seconds": 0.5},
        }
    )
    client = openai.OpenAI(base_url=gateway.base_url, api_key="unused", max_retries=0)
    file_id = upload(client, jsonl([chat_line(f"x-{i}", "late") for i in range(3)]))
    batch_id = asyncio.run(_insert_expired(database_url, file_id))

    expired = wait_for(client, batch_id)
    assert expired.status == "expired" and expired.expired_at
    assert expired.request_counts is not None
    assert (expired.request_counts.total, expired.request_counts.failed) == (3, 3)
    errors = file_lines(client, expired.error_file_id)
    assert sorted(line["custom_id"] for line in errors) == ["x-0", "x-1", "x-2"]
    assert {line["error"]["code"] for line in errors} == {"batch_expired"}
    assert all(line["response"] is None for line in errors)
    assert fake_openai.requests == []
