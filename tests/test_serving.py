"""`portway serve` shuts down gracefully: readiness off first, then a drain that lets an
in-flight stream finish, then the ledger is flushed."""

from __future__ import annotations

import gc
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portway.serving import GC_THRESHOLDS, settle_garbage_collector
from tests.conftest import fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.fakes.process import PortwayProcess

TEXT = "A slow answer that is still being streamed when the shutdown begins."


@pytest.fixture
def slow_upstream() -> Iterator[FakeOpenAI]:
    upstream = FakeOpenAI()
    upstream.start()
    upstream.default = Reply(content=TEXT, chunk_delay=0.6)
    yield upstream
    upstream.stop()


def _eventually(check: object, what: str, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _ready_status(url: str) -> int | None:
    try:
        return httpx.get(f"{url}/health/ready", timeout=2).status_code
    except httpx.TransportError:
        return None


def _refused(url: str) -> bool:
    try:
        httpx.get(f"{url}/health/live", timeout=1)
    except httpx.TransportError:
        return True
    return False


def test_sigterm_turns_readiness_off_then_drains_an_in_flight_stream(
    tmp_path: Path, slow_upstream: FakeOpenAI
) -> None:
    database = tmp_path / "portway.db"
    settings = {
        "database_url": f"sqlite:///{database}",
        "ledger": {"journal_dir": str(tmp_path / "journal")},
        "log_level": "warning",
        "models": [fake_model("chat", slow_upstream.base_url)],
        "server": {"unready_delay_seconds": 1.5, "drain_timeout_seconds": 30},
    }
    portway = PortwayProcess(settings, tmp_path).start()
    try:
        assert httpx.get(f"{portway.url}/health/ready").status_code == 200
        first_chunk = threading.Event()
        events: list[str] = []

        def stream() -> None:
            payload = {
                "model": "chat",
                "messages": [{"role": "user", "content": "go"}],
                "stream": True,
            }
            with httpx.stream(
                "POST", f"{portway.base_url}/chat/completions", json=payload, timeout=60
            ) as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        events.append(line.removeprefix("data: "))
                        first_chunk.set()

        reader = threading.Thread(target=stream)
        reader.start()
        assert first_chunk.wait(20), portway.log()
        portway.terminate()
        # Readiness turns false while the listener still accepts: a balancer sees 503.
        _eventually(
            lambda: _ready_status(portway.url) == 503,
            "readiness never turned false",
        )
        assert httpx.get(f"{portway.url}/health/ready").json() == {"status": "draining"}
        # Then it stops accepting, while the stream it already serves goes on.
        _eventually(lambda: _refused(portway.url), "portway kept accepting connections")
        reader.join(60)
        assert not reader.is_alive()
        assert events[-1] == "[DONE]"
        assert "error" not in "".join(events)
        assert portway.wait(30) in (0, -signal.SIGTERM)
    finally:
        portway.kill()
    # The ledger was flushed on the way out: the drained stream has its row.
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT status, stream FROM usage_records").fetchall()
    assert rows == [(200, 1)]


def test_start_up_objects_are_frozen_out_of_the_collector() -> None:
    """What a started server built is never walked by a full collection again."""
    before = gc.get_threshold()
    try:
        settle_garbage_collector()
        assert gc.get_freeze_count() > 10_000  # modules, settings, app: all of start-up
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
