"""A batch survives a SIGKILL of the `portway serve` executing it: a restart resumes it
and repeats no line whose result was stored (only the calls in flight at the kill)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import openai
import pytest

from tests.batches.support import MODEL, chat_line, file_lines, jsonl, new_key, upload, wait_for
from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply, last_user_text
from tests.fakes.process import PortwayProcess

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
        client = openai.OpenAI(base_url=first.base_url, api_key=key, max_retries=0)
        lines = [chat_line(f"k-{i}", f"line {i}") for i in range(LINES)]
        batch = client.batches.create(
            input_file_id=upload(client, jsonl(lines)),
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        wait_for(client, batch.id, lambda b: b.request_counts and b.request_counts.completed >= 40)
    finally:
        first.kill()
    stored_before_restart = len(fake_openai.requests)
    assert stored_before_restart < LINES  # killed mid-run

    second = PortwayProcess(config, tmp_path).start()
    try:
        client = openai.OpenAI(base_url=second.base_url, api_key=key, max_retries=0)
        done = wait_for(client, batch.id, timeout=120)
        assert done.status == "completed", done
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (LINES, 0)
        output = file_lines(client, done.output_file_id)
    finally:
        second.stop()
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
