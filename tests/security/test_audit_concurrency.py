"""Two processes appending to one audit log at once keep a single valid chain."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from portway.config import AuditConfig
from portway.security.audit_log import AuditLog
from portway.store import Database
from portway.store.audit import AuditRepository
from tests.storage import postgres_database

PER_PROCESS = 40

APPENDER = textwrap.dedent(
    """
    import asyncio, random, sys
    from portway.config import AuditConfig
    from portway.security.audit_log import AuditLog
    from portway.store import Database
    from portway.store.audit import AuditRepository

    async def main(url, name, count):
        database = Database(url, migrate_on_start=False)
        log = AuditLog(AuditRepository(database), AuditConfig(requests=True), b"k")
        try:
            for i in range(count):
                if i % 3 == 0:
                    await log.record("key.update", name, f"{name}-{i}", {"i": i})
                else:
                    log.request(name, "fake-gpt", {"i": i})
                    log.request(name, "fake-gpt", {"i": i, "again": True})
                    await log.flush()
                await asyncio.sleep(random.random() / 500)
        finally:
            await database.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def run_two(url: str) -> None:
    database = Database(url)
    await database.start()  # migrated once here; the appenders skip migrating
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                APPENDER,
                url,
                name,
                str(PER_PROCESS),
                env=env,
                stderr=subprocess.PIPE,
            )
            for name in ("proc-a", "proc-b")
        ]
        for process in processes:
            _, err = await asyncio.wait_for(process.communicate(), 120)
            assert process.returncode == 0, err.decode()
        log = AuditLog(AuditRepository(database), AuditConfig(), b"k")
        report = await log.verify()
        assert report.ok, report.problems
        per_process = PER_PROCESS // 3 + (1 if PER_PROCESS % 3 else 0)
        expected = 2 * (per_process + 2 * (PER_PROCESS - per_process))
        assert report.records == expected
        actors = {r.actor for r in await log.repository.page(0, 1000)}
        assert actors == {"proc-a", "proc-b"}
    finally:
        await database.close()


@pytest.mark.slow
async def test_two_processes_on_postgresql() -> None:
    async with postgres_database() as url:
        await run_two(url)


@pytest.mark.slow
async def test_two_processes_on_sqlite(tmp_path: Path) -> None:
    await run_two(f"sqlite:///{tmp_path / 'portway.db'}")
