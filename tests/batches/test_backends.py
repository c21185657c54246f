"""A batch end to end on each database backend (SQLite, and PostgreSQL with its
``SKIP LOCKED`` claims)."""

from __future__ import annotations

from pathlib import Path

import openai

from portway.app import create_app
from portway.config import Settings
from tests.batches.support import MODEL, chat_line, file_lines, jsonl, upload, wait_for
from tests.conftest import fake_model, with_private_state
from tests.fakes.openai_upstream import ByText, Fail, FakeOpenAI, Reply
from tests.fakes.server import PortwayServer


def test_a_batch_on_each_backend(
    database_url: str, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    fake_openai.default = ByText("BAD", Fail(400, "no"), otherwise=Reply())
    settings = with_private_state(
        {
            "database_url": database_url,
            "models": [fake_model(MODEL, fake_openai.base_url)],
            "batches": {"poll_interval_seconds": 0.05},
        },
        tmp_path,
    )
    server = PortwayServer(create_app(Settings.model_validate(settings)))
    server.start()
    try:
        client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        lines = [chat_line(f"b-{i}", "BAD" if i % 5 == 0 else f"ok {i}") for i in range(30)]
        batch = client.batches.create(
            input_file_id=upload(client, jsonl(lines)),
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"backend": database_url.split(":")[0]},
        )
        done = wait_for(client, batch.id)
        assert done.status == "completed"
        assert done.request_counts is not None
        assert (done.request_counts.completed, done.request_counts.failed) == (24, 6)
        assert done.usage is not None and done.usage.output_tokens == 24 * 5
        output = file_lines(client, done.output_file_id)
        errors = file_lines(client, done.error_file_id)
        assert sorted(line["custom_id"] for line in errors) == sorted(
            f"b-{i}" for i in range(0, 30, 5)
        )
        assert len({line["custom_id"] for line in output + errors}) == 30
        assert [b.id for b in client.batches.list(limit=1).data] == [batch.id]
    finally:
        server.stop()
