"""code_interpreter through real Assistants runs: the sandbox holds against the server's own
secrets, and without a boundary the tool is off (logged, in /health/ready, a clear run error).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.assistants.support import tool_call
from tests.conftest import PortwayFactory, fake_model, service_unavailable
from tests.fakes.openai_upstream import FakeOpenAI, Reply

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MASTER = "sk-master-boundary-7c1e"
MODEL = "fake-gpt"


def run_code(client: openai.OpenAI, fake: FakeOpenAI, code: str) -> Any:
    """One run whose model calls code_interpreter with ``code``, then answers "done"."""
    assistant = client.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Go."}])
    arguments = orjson.dumps({"code": code}).decode()
    fake.script(
        Reply(tool_calls=[tool_call("call_ci", "code_interpreter", arguments)]),
        Reply(content="done"),
    )
    return client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
    )


def settings(fake: FakeOpenAI, **code_interpreter: Any) -> dict[str, Any]:
    return {
        "master_key": MASTER,
        "models": [fake_model(MODEL, fake.base_url)],
        "assistants": {"poll_after_ms": 10, "sweep_interval_seconds": 0.05},
        "code_interpreter": {"cpu_seconds": 5, "wall_seconds": 20, **code_interpreter},
    }


def test_a_run_cannot_reach_the_servers_secrets(
    start_portway: PortwayFactory, fake_openai: FakeOpenAI
) -> None:
    if shutil.which("bwrap") is None:
        service_unavailable("bubblewrap is not installed (apt-get install bubblewrap)")
    server = start_portway(settings(fake_openai))
    services = server.app.state.services
    if not services.builtin_tools["code_interpreter"].available:
        service_unavailable("no sandbox boundary here")
    client = server.sdk(MASTER)
    client.files.create(file=("tenant-row-4e1a.txt", b"x"), purpose="assistants")
    database = services.settings.database_url.removeprefix("sqlite:///")
    storage = services.settings.files.storage_dir
    code = f"""
import os, sqlite3
for attempt in (
    lambda: sqlite3.connect({database!r}).execute('select filename from files').fetchall(),
    lambda: open({database!r}, 'rb').read(),
    lambda: os.listdir({storage!r}),
    lambda: open('/proc/{os.getpid()}/environ', 'rb').read(),
    lambda: os.readlink('/proc/{os.getpid()}/cwd'),
):
    try:
        print('GOT', attempt())
    except Exception as error:
        print('denied', type(error).__name__)
"""
    run = run_code(client, fake_openai, code)

    assert run.status == "completed", run.last_error
    messages = fake_openai.requests[-1].body["messages"]
    (told,) = [m["content"] for m in messages if m["role"] == "tool"]
    assert told.count("denied") == 5, told
    assert "GOT" not in told and "tenant-row-4e1a" not in told and MASTER not in told


def test_without_a_boundary_code_interpreter_is_off(
    start_portway: PortwayFactory,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    missing = str(tmp_path / "no-such-bwrap")
    with caplog.at_level(logging.WARNING, logger="portway.assistants.code_interpreter"):
        server = start_portway(settings(fake_openai, bwrap=missing))
    assert any("code_interpreter is OFF" in r.getMessage() for r in caplog.records)

    ready = httpx.get(f"{server.url}/health/ready")
    assert ready.status_code == 200  # the models are ready; the tool is reported off
    status = ready.json()["tools"]["code_interpreter"]
    assert status["status"] == "off"
    assert "bubblewrap" in status["reason"] and "apt-get install bubblewrap" in status["reason"]

    run = run_code(server.sdk(MASTER), fake_openai, "print('never runs')")
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.code == "server_error"
    assert "code_interpreter is off on this server" in run.last_error.message
    assert "bubblewrap" in run.last_error.message
    assert len(fake_openai.requests) == 1  # the tool result never went back to the model
