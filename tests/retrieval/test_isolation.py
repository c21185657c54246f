"""Indexing cannot stall the event loop: pathological files over HTTP while liveness is probed.

Found in review: ``[ \\t]+\\n`` rescanned long blank runs (a 50 KB file froze
``/health/live`` for 4 s, and in-progress files are indexed again at start-up), and the
standard HTML parser is quadratic on unclosed tags. Extraction runs in worker processes
now, with a time limit; the probes below must keep answering while files are indexed.
"""

from __future__ import annotations

import io
import time

import httpx
import openai
import pytest

from tests.conftest import PortwayFactory
from tests.fakes.server import PortwayServer

PROBE_TIMEOUT = 10.0  # a frozen loop does not answer at all; a busy machine still does
INDEXING_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory) -> PortwayServer:
    return start_portway(
        {
            "models": [{"name": "m", "provider": "openai", "base_url": "http://127.0.0.1:9/v1"}],
            "retrieval": {"indexing_timeout": INDEXING_TIMEOUT},
        }
    )


@pytest.fixture
def client(server: PortwayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)


def index_while_probing(
    server: PortwayServer, client: openai.OpenAI, name: str, data: bytes
) -> tuple[object, int]:
    """Index one file, probing liveness until it is done: (the file, probes answered)."""
    uploaded = client.files.create(file=(name, io.BytesIO(data)), purpose="assistants")
    store = client.vector_stores.create(name=name, file_ids=[uploaded.id])
    answered = 0
    deadline = time.monotonic() + 300
    with httpx.Client(timeout=PROBE_TIMEOUT) as probe:
        while time.monotonic() < deadline:
            assert probe.get(f"{server.url}/health/live").status_code == 200
            answered += 1
            entry = client.vector_stores.files.retrieve(uploaded.id, vector_store_id=store.id)
            if entry.status != "in_progress":
                return entry, answered
            time.sleep(0.02)
    raise AssertionError(f"{name} was still being indexed after 300 s")


def test_long_blank_runs_index_without_freezing_the_loop(
    server: PortwayServer, client: openai.OpenAI
) -> None:
    # Runs of spaces and tabs ended by a newline: quadratic for `[ \t]+\n` (minutes here).
    line = " \t" * 60_000 + "refund policy\n"
    entry, answered = index_while_probing(server, client, "blank.txt", line.encode() * 4)
    assert entry.status == "completed", entry.last_error
    assert answered >= 1
    store_id = entry.vector_store_id
    hits = client.vector_stores.search(store_id, query="refund policy").data
    assert hits and "refund policy" in hits[0].content[0].text


def test_a_file_over_the_time_limit_fails_cleanly_while_the_loop_answers(
    server: PortwayServer, client: openai.OpenAI
) -> None:
    # Unclosed tags: Python's HTML parser rescans the rest of the document for each one.
    entry, answered = index_while_probing(server, client, "tags.html", b"<a " * 40_000)
    assert entry.status == "failed"
    assert entry.last_error is not None and entry.last_error.code == "invalid_file"
    assert "took longer than" in entry.last_error.message
    assert answered >= 2  # the loop answered while the worker was busy
    # The killed worker was replaced: the next file is indexed.
    entry, _ = index_while_probing(server, client, "ok.txt", b"Shipping takes three days.")
    assert entry.status == "completed", entry.last_error
