"""While the database is away, the ledger's memory stays bounded by its queue."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from pathlib import Path

import pytest

from portway.accounting import ledger
from portway.accounting.ledger import LedgerWriter, UsageRecord
from portway.config import LedgerConfig
from portway.store import Database
from portway.store.usage import UsageRepository

QUEUE_BOUND = 50
SUBMITTED = 1000


def _record(index: int) -> UsageRecord:
    return UsageRecord(
        created_at=time.time(),
        request_id=f"req_{index}",
        endpoint="chat.completions",
        model="bench",
        latency_ms=1.0,
        status=200,
        prompt_tokens=12,
        completion_tokens=1,
    )


def _live_records() -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if isinstance(item, UsageRecord))


async def test_rows_journaled_during_an_outage_are_not_also_kept_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger, "MAX_QUEUED", QUEUE_BOUND)
    # The database file's directory does not exist: every commit fails, as in an outage.
    database = Database(f"sqlite:///{tmp_path}/gone/portway.db")
    writer = LedgerWriter(UsageRepository(database), LedgerConfig(), tmp_path / "journal")
    await writer.start()
    before = _live_records()
    for index in range(SUBMITTED):
        writer.submit(_record(index))
        if index % 100 == 0:
            await asyncio.sleep(0)  # let the writer take a batch and start failing on it
    journal = (tmp_path / "journal").glob("*.jsonl")
    assert sum(path.read_bytes().count(b"\n") for path in journal) == SUBMITTED
    # The queue (bounded) and the one batch being retried; before the fix, the journal's
    # current segment also kept every record it had written, without bound.
    assert writer.queued == QUEUE_BOUND
    assert _live_records() - before <= 2 * QUEUE_BOUND
    task = writer._task  # it would retry until the database returns: stop it here
    assert task is not None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await database.close()
