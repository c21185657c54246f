"""A batch survives a SIGKILL of the `portway serve` executing it: a restart (SQLite), or
another process once the lease lapses (PostgreSQL), resumes it and repeats no line whose
result was stored (only the calls in flight at the kill)."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest

from portway.store import Database
from portway.store.batches import BatchStore
from tests.batches.support import MODEL, chat_line, file_lines, jsonl, new_key, upload, wait_for
from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply, last_user_text
from tests.fakes.process import PortwayProcess
from tests.storage import postgres_database

pytestmark = pytest.mark.slow

MASTER = "sk-master-batch-recovery"
CONCURRENCY = 4
LINES = 200


def test_a_killed_batch_resumes_without_repeating_finished_lines(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.default = Reply(delay=0.05)
    config = {
        "master_key": MASTER,
        "database_url": f"sqlite:///{tmp_path}/portway.db",
        "files": {"storage_dir": str(tmp_path / "files")},
        "ledger": {"journal_dir": str(tmp_path / "journal")},
        "log_level": "warning",
        "models": [fake_model(MODEL, fake_openai.base_url)],
        "batches": {"concurrency": CONCURRENCY, "poll_interval_seconds": 0.1},
    }
    first = PortwayProcess(config, tmp_path).start()
    try:
        key = new_key(first.url, MASTER)
        batch_id = _start_batch(first, key)
    finally:
        first.kill()
    assert len(fake_openai.requests) < LINES  # killed mid-run

    second = PortwayProcess(config, tmp_path).start()
    try:
        client = openai.OpenAI(base_url=second.base_url, api_key=key, max_retries=0)
        done = wait_for(client, batch_id, timeout=120)
        assert done.status == "completed", done
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (LINES, 0)
        output = file_lines(client, done.output_file_id)
    finally:
        second.stop()
    _assert_each_line_once(output, fake_openai)


def _start_batch(process: PortwayProcess, key: str) -> str:
    client = openai.OpenAI(base_url=process.base_url, api_key=key, max_retries=0)
    lines = [chat_line(f"k-{i}", f"line {i}") for i in range(LINES)]
    batch = client.batches.create(
        input_file_id=upload(client, jsonl(lines)),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    wait_for(client, batch.id, lambda b: b.request_counts and b.request_counts.completed >= 40)
    return batch.id


def _assert_each_line_once(output: list[dict[str, Any]], fake_openai: FakeOpenAI) -> None:
    assert Counter(line["custom_id"] for line in output) == Counter(f"k-{i}" for i in range(LINES))
    for line in output:
        number = line["custom_id"].removeprefix("k-")
        assert (
            line["response"]["body"]["choices"][0]["message"]["content"] == f"echo: line {number}"
        )
    # Every line reached the upstream; only those in flight at the kill (at most the
    # batch's concurrency) reached it twice.
    calls = Counter(last_user_text(request.body) for request in fake_openai.requests)
    assert set(calls) == {f"line {i}" for i in range(LINES)}
    repeated = [text for text, count in calls.items() if count > 1]
    assert all(calls[text] == 2 for text in repeated)
    assert len(repeated) <= CONCURRENCY


async def _holder_pid(database_url: str, batch_id: str) -> int:
    """The pid of the process whose worker holds the batch (worker ids are host:pid:...)."""
    database = Database(database_url, migrate_on_start=False)
    try:
        batch = await BatchStore(database).get_by_id(batch_id)
    finally:
        await database.close()
    assert batch is not None and batch.owner is not None
    return int(batch.owner.split(":")[1])


async def test_another_process_takes_a_killed_batch_over_on_postgresql(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.default = Reply(delay=0.05)
    async with postgres_database() as database_url:
        config: dict[str, Any] = {
            "master_key": MASTER,
            "database_url": database_url,
            "files": {"storage_dir": str(tmp_path / "files")},  # shared by both processes
            "log_level": "warning",
            "models": [fake_model(MODEL, fake_openai.base_url)],
            "batches": {
                "concurrency": CONCURRENCY,
                "poll_interval_seconds": 0.1,
                "lease_seconds": 2,
                "sweep_interval_seconds": 0.2,
            },
        }
        processes = [
            PortwayProcess(
                {**config, "ledger": {"journal_dir": str(tmp_path / f"journal-{i}")}}, tmp_path
            ).start()
            for i in range(2)
        ]
        try:
            key = new_key(processes[0].url, MASTER)
            batch_id = await asyncio.to_thread(_start_batch, processes[0], key)
            # Either process may have claimed it: kill the one that holds it.
            holder = await _holder_pid(database_url, batch_id)
            [killed] = [p for p in processes if p.pid == holder]
            [survivor] = [p for p in processes if p is not killed]
            killed.kill()
            assert len(fake_openai.requests) < LINES  # killed mid-run
            client = openai.OpenAI(base_url=survivor.base_url, api_key=key, max_retries=0)
            done = await asyncio.to_thread(wait_for, client, batch_id, timeout=120)
            assert done.status == "completed", done
            output = file_lines(client, done.output_file_id)
        finally:
            for process in processes:
                process.stop()
    _assert_each_line_once(output, fake_openai)
