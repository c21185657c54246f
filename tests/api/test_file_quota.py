"""Per-tenant storage quotas for files and code_interpreter outputs; generated files expire."""

from __future__ import annotations

import io
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.assistants.support import tool_call
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.server import PortwayServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MASTER = "sk-master-quota"
MODEL = "fake-gpt"
QUOTA = 4000
GENERATED_TTL = 2


@pytest.fixture(scope="module")
def storage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("quota-files")


@pytest.fixture(scope="module")
def gateway(
    start_portway: PortwayFactory, fake_openai_server: FakeOpenAI, storage_dir: Path
) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "models": [fake_model(MODEL, fake_openai_server.base_url)],
            "files": {
                "storage_dir": str(storage_dir),
                "tenant_quota_bytes": QUOTA,
                "generated_file_ttl_seconds": GENERATED_TTL,
                "sweep_interval_seconds": 0.2,
            },
            "assistants": {"poll_after_ms": 10, "sweep_interval_seconds": 0.05},
            "router": {"*": {"retries": 0}},
            "code_interpreter": {"cpu_seconds": 5, "wall_seconds": 20},
        }
    )


def _client(gateway: PortwayServer, team: str) -> openai.OpenAI:
    response = httpx.post(
        f"{gateway.url}/v1/admin/keys",
        json={"name": team, "team": team},
        headers={"authorization": f"Bearer {MASTER}"},
    )
    assert response.status_code == 201, response.text
    return gateway.sdk(response.json()["key"])


def _upload(client: openai.OpenAI, size: int, name: str = "data.bin") -> Any:
    return client.files.create(file=(name, io.BytesIO(b"x" * size)), purpose="assistants")


def _stored_files(storage_dir: Path) -> set[str]:
    return {path.name for path in storage_dir.glob("*/file-*")}


def test_an_upload_past_the_tenant_quota_is_refused_and_nothing_is_kept(
    gateway: PortwayServer, storage_dir: Path
) -> None:
    client = _client(gateway, "quota-a")
    first = _upload(client, 3000)
    stored = _stored_files(storage_dir)
    with pytest.raises(openai.APIStatusError) as caught:
        _upload(client, 1500)
    error = caught.value
    assert error.status_code == 413
    body: Any = error.body
    assert body["code"] == "storage_quota_exceeded"
    assert body["type"] == "invalid_request_error"
    assert body["param"] == "file"
    assert str(QUOTA) in body["message"]
    assert [f.id for f in client.files.list().data] == [first.id]
    assert _stored_files(storage_dir) == stored  # the refused bytes were not kept
    # Another tenant has its own quota; freeing space lets the first upload again.
    _upload(_client(gateway, "quota-b"), 3000)
    client.files.delete(first.id)
    assert _upload(client, 1500).bytes == 1500


CODE = """
with open("report.txt", "w") as f:
    f.write("r" * 100)
"""


def _run_code(client: openai.OpenAI, fake: FakeOpenAI, code: str) -> Any:
    assistant = client.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Write a report."}])
    fake.script(
        Reply(
            tool_calls=[
                tool_call("call_ci", "code_interpreter", orjson.dumps({"code": code}).decode())
            ]
        ),
        Reply(content="Done."),
    )
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=assistant.id)
    assert run.status == "completed", run.last_error
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=thread.id).data
    (step,) = [step for step in steps if step.type == "tool_calls"]
    (message,) = client.beta.threads.messages.list(thread_id=thread.id, run_id=run.id).data
    return step, message


def test_generated_files_expire_and_are_purged(
    gateway: PortwayServer, fake_openai: FakeOpenAI, storage_dir: Path
) -> None:
    client = _client(gateway, "generated")
    _step, message = _run_code(client, fake_openai, CODE)
    (attachment,) = message.attachments
    generated = client.files.retrieve(attachment.file_id)
    assert generated.purpose == "assistants_output"
    assert generated.expires_at == generated.created_at + GENERATED_TTL
    assert attachment.file_id in _stored_files(storage_dir)
    deadline = time.monotonic() + GENERATED_TTL + 10
    while attachment.file_id in _stored_files(storage_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert attachment.file_id not in _stored_files(storage_dir)  # purged by the sweeper
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(attachment.file_id)


def test_code_interpreter_outputs_count_against_the_quota(
    gateway: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    client = _client(gateway, "generated-full")
    kept = _upload(client, QUOTA - 50)
    _step, message = _run_code(client, fake_openai, CODE)
    assert not message.attachments
    assert [f.id for f in client.files.list().data] == [kept.id]
    (tool_message,) = [m for m in fake_openai.requests[-1].body["messages"] if m["role"] == "tool"]
    assert "not exported: report.txt" in tool_message["content"]
    assert "storage quota" in tool_message["content"]
