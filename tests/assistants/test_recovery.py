"""Runs survive their server: interrupted runs are resumed or failed, never left in progress."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from portway.store import Database
from portway.store.assistants import RunStore
from tests.assistants.support import (
    MODEL,
    TERMINAL,
    sdk,
    use_test_tenants,
    wait_for,
    wait_for_status,
)
from tests.assistants.test_store import new_run
from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply, Stall
from tests.fakes.server import free_port

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[2]


async def seed_interrupted_runs(database_url: str, client_setup: dict) -> dict[str, str]:
    """Runs a dead server left behind: one to resume, one out of attempts, one cancelling."""
    database = Database(database_url)
    await database.start()
    try:
        runs = RunStore(database)
        past = time.time() - 60
        seeded = {}
        for name, status, attempts in (
            ("resume", "in_progress", 1),
            ("exhausted", "in_progress", 2),
            ("cancelling", "cancelling", 1),
        ):
            run = new_run(
                client_setup[name],
                tenant="team-a",
                status=status,
                owner="dead-worker",
                lease_until=past,
                attempts=attempts,
                assistant_id=client_setup["assistant"],
                model=MODEL,
                principal={"kind": "virtual_key", "key_id": "key_a", "team": "team-a"},
            )
            await runs.create(run)
            seeded[name] = run.id
        return seeded
    finally:
        await database.close()


def test_interrupted_runs_are_recovered_at_start(
    start_portway, fake_openai: FakeOpenAI, database_url: str
) -> None:
    settings = {
        "models": [fake_model(MODEL, fake_openai.base_url)],
        "database_url": database_url,
        "assistants": {"poll_after_ms": 10, "max_attempts": 2},
    }
    # A first server creates the objects, then stops as if it had died with runs in flight.
    first = start_portway(settings)
    use_test_tenants(first)
    client = sdk(first)
    assistant = client.beta.assistants.create(model=MODEL)
    setup = {"assistant": assistant.id}
    for name in ("resume", "exhausted", "cancelling"):
        setup[name] = client.beta.threads.create(
            messages=[{"role": "user", "content": f"run {name}"}]
        ).id
    first.stop()
    seeded = asyncio.run(seed_interrupted_runs(database_url, setup))
    fake_openai.script(Reply(content="resumed answer"))

    second = start_portway(settings)
    use_test_tenants(second)
    try:
        check_recovered(sdk(second), setup, seeded)
    finally:
        second.stop()  # before the PostgreSQL database is dropped


def check_recovered(client: openai.OpenAI, setup: dict, seeded: dict) -> None:
    resumed = wait_for_status(client, setup["resume"], seeded["resume"], TERMINAL)
    assert resumed.status == "completed"
    answer = client.beta.threads.messages.list(setup["resume"], run_id=seeded["resume"]).data
    assert [m.content[0].text.value for m in answer] == ["resumed answer"]

    exhausted = wait_for_status(client, setup["exhausted"], seeded["exhausted"], TERMINAL)
    assert exhausted.status == "failed"
    assert exhausted.last_error.code == "server_error"

    cancelled = wait_for_status(client, setup["cancelling"], seeded["cancelling"], TERMINAL)
    assert cancelled.status == "cancelled"


def _serve(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    with log.open("ab") as output:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "portway",
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
            ],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def _wait_until_live(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    def live() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"Portway exited:\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/health/live", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(live, timeout=60, interval=0.1)


@pytest.mark.slow
def test_kill_9_mid_run_then_restart(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    config = tmp_path / "portway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "models": [fake_model(MODEL, fake_openai.base_url)],
                "database_url": f"sqlite:///{tmp_path / 'portway.db'}",
                "log_level": "warning",
                "assistants": {"poll_after_ms": 20},
            }
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "portway.log"
    process = _serve(config, port, log)
    try:
        _wait_until_live(url, process, log)
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        assistant = client.beta.assistants.create(model=MODEL)
        thread = client.beta.threads.create(messages=[{"role": "user", "content": "story"}])
        # The model starts answering, then hangs: the run is mid-answer when we kill. (The
        # stall outlives the restart; it is short so the fake server can stop afterwards.)
        fake_openai.script(Stall(after=2, seconds=5, reply=Reply(content="half an answer")))
        run = client.beta.threads.runs.create(thread.id, assistant_id=assistant.id)
        wait_for(lambda: client.beta.threads.messages.list(thread.id, run_id=run.id).data)
        assert client.beta.threads.runs.retrieve(run.id, thread_id=thread.id).status == (
            "in_progress"
        )

        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process = _serve(config, port, log)
        _wait_until_live(url, process, log)

        final = wait_for_status(client, thread.id, run.id, TERMINAL, timeout=30)
        assert final.status in ("completed", "failed")
        if final.status == "failed":
            assert final.last_error.code == "server_error"
        else:
            # Resumed: the model call was repeated; the half-written answer is gone.
            (answer,) = client.beta.threads.messages.list(thread.id, run_id=run.id).data
            assert answer.status == "completed"
            assert answer.content[0].text.value == "echo: story"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
