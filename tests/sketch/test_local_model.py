"""The whole flow on the real local model (SmolLM2-135M): it completes with a valid graph.

Content quality is not asserted (a 135M model writes thin architectures); the grammar
built from the schema guarantees the shape, validation and repair the rest.
"""

from __future__ import annotations

import httpx
import pytest

from portway.sketch.exporters import FORMATS, available
from portway.sketch.graph import KINDS
from tests.conftest import PortwayFactory
from tests.sketch.support import wait_for

pytestmark = pytest.mark.slow

PROBLEM_CODES = {"unreadable", "duplicate_id", "dangling_edge", "self_loop", "orphan"}


def test_a_sketch_on_the_local_model_completes_with_a_valid_graph(
    start_portway: PortwayFactory,
) -> None:
    sketch_settings = {
        "poll_interval_seconds": 0.2,
        # A fixed seed: the same sampled graph on every run, so the test is not left to
        # chance (greedy decoding makes this small model loop until its token cap).
        "seed": 11,
        "max_graph_tokens": 1200,
        "max_doc_tokens": 600,
    }
    server = start_portway({"sketch": sketch_settings})
    with httpx.Client(base_url=server.url, timeout=60) as http:
        created = http.post(
            "/v1/sketches",
            json={
                "description": "A URL shortener with click analytics",
                "options": {"max_nodes": 6},
            },
        )
        assert created.status_code == 200, created.text
        assert created.json()["model"] == "smollm2-135m"
        sketch = wait_for(http, created.json()["id"], timeout=900)
        assert sketch["status"] == "completed", (sketch["status"], sketch.get("error"))
        graph = sketch["graph"]
        ids = [node["id"] for node in graph["nodes"]]
        assert ids and len(ids) == len(set(ids))
        assert all(node["kind"] in KINDS for node in graph["nodes"])
        assert all(e["from"] in ids and e["to"] in ids for e in graph["edges"])
        assert all(e["from"] != e["to"] for e in graph["edges"])
        # What the clean-up removed, or could not fix (an orphan), is reported by name.
        assert {p["code"] for p in sketch["problems"]} <= PROBLEM_CODES
        assert "## Components" in sketch["documents"][0]["content"]
        for name in FORMATS:
            if available(name):
                response = http.get(f"/v1/sketches/{sketch['id']}/export/{name}")
                assert response.status_code == 200, (name, response.text)
                assert response.content
