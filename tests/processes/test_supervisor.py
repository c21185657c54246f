"""`portway serve --workers N` as real processes: N workers on one port, a crashed worker
replaced while its socket keeps the connections, SIGTERM drains them all, a start-up
failure stops the supervisor, and the local model is loaded once (by the model host,
which is started again when it dies)."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from portway.processes.supervisor import STARTUP_FAILURE
from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.process import PortwayProcess
from tests.processes.support import eventually

pytestmark = pytest.mark.slow


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the sockets listening on ``port`` (state 0A in /proc/net/tcp*)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    return inodes


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _chat(process: PortwayProcess, **extra: Any) -> httpx.Response:
    body = {"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}], **extra}
    # A connection per call: the kernel spreads connections over the workers' sockets.
    return httpx.post(f"{process.base_url}/chat/completions", json=body, timeout=30)


def test_workers_share_the_port_and_a_crashed_one_is_replaced(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    database = tmp_path / "portway.db"
    settings = {
        "database_url": f"sqlite:///{database}",
        "ledger": {"journal_dir": str(tmp_path / "journal")},
        "log_level": "warning",
        "models": [fake_model("fake-gpt", fake_openai.base_url)],
    }
    portway = PortwayProcess(settings, tmp_path, workers=2).start()
    try:
        workers = eventually(lambda: len(portway.children()) == 2 and portway.children(), "2")
        # One listening socket per worker, all on the same port (SO_REUSEPORT).
        listening = eventually(
            lambda: len(_listening_inodes(portway.port)) == 2 and _listening_inodes(portway.port),
            "two sockets listen on the port",
        )
        for pid in workers:
            assert len(_socket_inodes(pid) & listening) == 1
        served = sum(_chat(portway).status_code == 200 for _ in range(20))
        assert served == 20

        crashed = workers[0]
        os.kill(crashed, signal.SIGKILL)
        # Connections that reach the dead worker's socket wait for its replacement.
        served += sum(_chat(portway).status_code == 200 for _ in range(20))
        assert served == 40
        replaced = eventually(
            lambda: len(portway.children()) == 2 and crashed not in portway.children(),
            "the crashed worker was not replaced",
        )
        assert replaced
        assert workers[1] in portway.children()
        served += sum(_chat(portway, stream=True).status_code == 200 for _ in range(10))

        portway.terminate()
        assert portway.wait(60) == 0, portway.log()
        assert portway.children() == []
    finally:
        portway.kill()
    # Every worker flushed its ledger on the way out.
    with sqlite3.connect(database) as connection:
        (rows,) = connection.execute("SELECT count(*) FROM usage_records").fetchone()
    assert rows == served == 50


def test_a_worker_that_cannot_start_stops_the_supervisor(tmp_path: Path) -> None:
    settings = {
        # Nothing listens there: the workers' start-up (migrations) fails.
        "database_url": "postgresql://postgres@127.0.0.1:1/nowhere",
        "ledger": {"journal_dir": str(tmp_path / "journal")},
        "models": [fake_model("fake-gpt", "http://127.0.0.1:9/v1")],
    }
    portway = PortwayProcess(settings, tmp_path, workers=2)
    with pytest.raises(RuntimeError, match="exited at start-up"):
        portway.start()
    assert portway.wait(10) == STARTUP_FAILURE


def _maps_model(pid: int) -> bool:
    try:
        return ".gguf" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def test_the_local_model_is_loaded_once_for_all_workers(tmp_path: Path) -> None:
    settings = {
        "database_url": f"sqlite:///{tmp_path}/portway.db",
        "ledger": {"journal_dir": str(tmp_path / "journal")},
        "log_level": "warning",
        "models": [{"name": "smollm2-135m", "provider": "local", "options": {"n_threads": 1}}],
    }
    portway = PortwayProcess(settings, tmp_path, workers=2).start(timeout=180)
    try:
        eventually(
            lambda: httpx.get(f"{portway.url}/health/ready", timeout=5).status_code == 200,
            "not ready",
        )
        children = eventually(lambda: len(portway.children()) == 3 and portway.children(), "3")
        # Two workers and the model host: only the host holds the weights.
        assert sum(_maps_model(pid) for pid in children) == 1
        models = httpx.get(f"{portway.base_url}/models").json()
        assert [m["id"] for m in models["data"]] == ["smollm2-135m"]
        body = {
            "model": "smollm2-135m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "Hi"}],
        }
        for _ in range(4):
            whole = httpx.post(f"{portway.base_url}/chat/completions", json=body, timeout=60)
            assert whole.status_code == 200, whole.text
            assert 1 <= whole.json()["usage"]["completion_tokens"] <= 5
        with httpx.stream(
            "POST", f"{portway.base_url}/chat/completions", json={**body, "stream": True}
        ) as streamed:
            lines = [line for line in streamed.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        assert not any('"error"' in line for line in lines)

        # A crashed model host is started again; the workers reach the new one.
        (host,) = [pid for pid in children if _maps_model(pid)]
        os.kill(host, signal.SIGKILL)
        eventually(
            lambda: [p for p in portway.children() if _maps_model(p) and p != host],
            "the model host was not started again",
        )

        def answered() -> bool:
            reply = httpx.post(f"{portway.base_url}/chat/completions", json=body, timeout=60)
            return reply.status_code == 200

        eventually(answered, "no answer from the new model host")
        assert sum(_maps_model(pid) for pid in portway.children()) == 1
        portway.terminate()
        assert portway.wait(60) == 0, portway.log()
    finally:
        portway.kill()
