"""What does the audit log cost? Append latency of one admin record, request-record
throughput (batched as the background flusher appends them), and verification speed.

On SQLite (a temporary file) or ``--database-url postgresql://...``:

- admin: ``AuditLog.record`` one at a time (one transaction each), p50/p99
- requests: ``--records`` request records queued, flushed in batches of 500
- verify: the whole chain walked and checked, records per second

    PYTHONPATH=src python benchmarks/audit_log.py [--records 20000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from portway.config import AuditConfig
from portway.security.audit_log import AuditLog
from portway.store import Database
from portway.store.audit import AuditRepository


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(database_url: str, records: int, admin_calls: int) -> None:
    database = Database(database_url)
    await database.start()
    log = AuditLog(AuditRepository(database), AuditConfig(requests=True), b"bench-key")
    try:
        latencies = []
        for i in range(admin_calls):
            started = time.perf_counter()
            await log.record("key.update", "master", f"key_{i}", {"fields": ["rpm"], "rpm": i})
            latencies.append((time.perf_counter() - started) * 1000)
        print(
            f"admin record: p50 {statistics.median(latencies):.2f} ms, "
            f"p99 {percentile(latencies, 0.99):.2f} ms ({admin_calls} appends)"
        )
        details = {"model": "gpt-4o-mini", "status": 200, "guardrails": ["pii:redacted"]}
        started = time.perf_counter()
        for _ in range(records):
            log.request("key:key_bench", "gpt-4o-mini", details)
        await log.flush()
        elapsed = time.perf_counter() - started
        print(f"request records: {records / elapsed:,.0f} per second (batches of 500)")
        started = time.perf_counter()
        report = await log.verify()
        elapsed = time.perf_counter() - started
        assert report.ok, report.problems
        print(
            f"verify: {report.records:,} records in {elapsed:.2f} s "
            f"({report.records / elapsed:,.0f} per second)"
        )
    finally:
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--admin-calls", type=int, default=500)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = args.database_url or f"sqlite:///{directory}/bench.db"
        asyncio.run(run(url, args.records, args.admin_calls))


if __name__ == "__main__":
    main()
