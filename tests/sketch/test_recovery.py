"""A sketch survives its process: handed back on shutdown, taken over after a crash."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI, Reply
from tests.sketch.support import MODEL, narrative, reply, shortener, wait_for


def settings(database: Path, upstream: FakeOpenAI) -> dict[str, object]:
    return {
        "database_url": f"sqlite:///{database}",
        "models": [fake_model(MODEL, upstream.base_url)],
        "sketch": {"poll_interval_seconds": 0.05, "sweep_interval_seconds": 0.05},
    }


def test_a_sketch_interrupted_by_shutdown_or_crash_completes_on_the_next_start(
    start_portway: PortwayFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    database = tmp_path / "sketch.db"
    # The first process stops while the model is still thinking.
    fake_openai.script(Reply(content="{}", delay=4))
    first = start_portway(settings(database, fake_openai))
    with httpx.Client(base_url=first.url) as http:
        sketch_id = http.post("/v1/sketches", json={"description": "a chat app"}).json()["id"]
        deadline = time.monotonic() + 10
        while http.get(f"/v1/sketches/{sketch_id}").json()["status"] != "in_progress":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    first.stop()
    with sqlite3.connect(database) as db:
        status, owner = db.execute(
            "SELECT status, owner FROM sketches WHERE id = ?", (sketch_id,)
        ).fetchone()
    assert (status, owner) == ("queued", None)  # handed back, its work kept
    # Now a crash: the row says a dead process holds it, with a lapsed lease.
    with sqlite3.connect(database) as db:
        db.execute(
            "UPDATE sketches SET status = 'in_progress', owner = 'dead:1:x', lease_until = 0 "
            "WHERE id = ?",
            (sketch_id,),
        )
    fake_openai.script(reply(shortener()), reply(narrative()))
    second = start_portway(settings(database, fake_openai))
    with httpx.Client(base_url=second.url) as http:
        sketch = wait_for(http, sketch_id)
    assert sketch["status"] == "completed" and sketch["graph"] == shortener()
