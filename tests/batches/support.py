"""Helpers of the Batch API tests: input files, waiting for a batch, reading its files."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import orjson
from openai.types import Batch

MODEL = "fake-gpt"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


def chat_line(custom_id: str, text: str, model: str = MODEL) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text}]},
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def upload(client: openai.OpenAI, content: bytes, purpose: str = "batch") -> str:
    return client.files.create(file=("input.jsonl", content), purpose=purpose).id  # type: ignore[arg-type]


def wait_for(
    client: openai.OpenAI,
    batch_id: str,
    done: Any = lambda batch: batch.status in TERMINAL,
    timeout: float = 60.0,
) -> Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if done(batch):
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch still {batch.status} ({batch.request_counts})")
        time.sleep(0.05)


def file_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [orjson.loads(line) for line in client.files.content(file_id).content.splitlines()]


def new_key(url: str, master: str) -> str:
    return issue_key(url, master)[1]


def issue_key(url: str, master: str, **fields: Any) -> tuple[str, str]:
    """A new virtual key: (its id, its secret)."""
    response = httpx.post(
        f"{url}/v1/admin/keys",
        json={"name": "batches", **fields},
        headers={"authorization": f"Bearer {master}"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["key"]
