"""``BatchWriter``: one batch per interval under steady traffic, every row written once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from portway.store.batcher import BatchWriter


class SlowTable:
    """Stands in for the database: each write takes a while, as a real transaction does."""

    def __init__(self, seconds_per_write: float) -> None:
        self.batches: list[list[int]] = []
        self._seconds = seconds_per_write

    async def write(self, rows: Sequence[int]) -> None:
        await asyncio.sleep(self._seconds)
        self.batches.append(list(rows))


async def test_steady_traffic_is_written_in_one_batch_per_interval() -> None:
    table = SlowTable(seconds_per_write=0.01)
    writer = BatchWriter(
        table.write, name="test", flush_interval=0.1, max_batch=10_000, max_queued=100_000
    )
    writer.start()
    # A row every millisecond for about half a second: rows keep arriving during writes.
    for row in range(500):
        writer.submit(row)
        await asyncio.sleep(0.001)
    await writer.close()
    written = [row for batch in table.batches for row in batch]
    assert written == list(range(500))  # every row once, in order
    # Draining until empty wrote a batch every ~10 ms (one write's time), ~50 of them.
    assert len(table.batches) <= 15, [len(batch) for batch in table.batches]


async def test_flush_writes_what_was_queued_before_it_was_called() -> None:
    table = SlowTable(seconds_per_write=0)
    writer = BatchWriter(table.write, name="test", flush_interval=60, max_batch=2, max_queued=10)
    for row in range(5):
        writer.submit(row)
    await writer.flush()
    assert table.batches == [[0, 1], [2, 3], [4]]  # max_batch rows at a time
    await writer.close()
    assert writer.written == 5
