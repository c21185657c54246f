"""`/v1/sketches` over HTTP against a scripted fake upstream: generation, repair,
revisions and diffs, clarifying questions, exports, errors and tenant isolation."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import Fail, FakeOpenAI
from tests.fakes.server import PortwayServer
from tests.sketch.support import (
    MODEL,
    edge,
    narrative,
    node,
    reply,
    shortener,
    wait_for,
    with_dangling_edge,
)

MASTER = "sk-master-sketch"
FAST = {"poll_interval_seconds": 0.05, "sweep_interval_seconds": 0.05, "lease_seconds": 3}


@pytest.fixture(scope="module")
def server(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    return start_portway(
        {
            "master_key": MASTER,
            "models": [fake_model(MODEL, fake_openai_server.base_url)],
            "sketch": FAST,
        }
    )


@pytest.fixture
def http(server: PortwayServer, fake_openai: FakeOpenAI) -> Iterator[httpx.Client]:
    with server.admin(MASTER) as client:
        yield client


def create(
    http: httpx.Client, description: str = "a URL shortener with analytics", **extra: Any
) -> dict[str, Any]:
    response = http.post("/v1/sketches", json={"description": description, **extra})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def schema_name(body: dict[str, Any]) -> str:
    return body["response_format"]["json_schema"]["name"]  # type: ignore[no-any-return]


def assert_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param
    return error  # type: ignore[no-any-return]


def test_a_known_description_yields_exactly_the_scripted_graph(
    http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(reply(shortener()), reply(narrative()))
    created = create(http)
    assert created["status"] == "queued" and created["object"] == "sketch"
    assert created["id"].startswith("sketch_") and created["model"] == MODEL
    sketch = wait_for(http, created["id"])
    assert sketch["status"] == "completed", sketch
    assert sketch["graph"] == shortener()
    assert sketch["version"] == 1 and sketch["problems"] == [] and sketch["repaired"] is False
    design = sketch["documents"][0]
    assert design["name"] == "design.md"
    assert "Short links are resolved at the edge" in design["content"]
    # Two structured-output calls through the door: the graph, then the narrative.
    bodies = [r.body for r in fake_openai.requests]
    assert [schema_name(b) for b in bodies] == ["architecture_graph", "design_narrative"]
    graph_call = bodies[0]
    assert graph_call["response_format"]["type"] == "json_schema"
    assert "a URL shortener with analytics" in graph_call["messages"][-1]["content"]
    kinds = graph_call["response_format"]["json_schema"]["schema"]["properties"]["nodes"]
    assert "database" in kinds["items"]["properties"]["kind"]["enum"]
    # ... each one recorded in the ledger under its sketch step.
    usage = http.get("/v1/admin/usage", params={"group_by": "endpoint", "key": "master"})
    endpoints = {row["endpoint"]: row["requests"] for row in usage.json()["data"]}
    assert endpoints.get("sketch.generate", 0) >= 1 and endpoints.get("sketch.design", 0) >= 1


def test_a_dangling_edge_is_repaired_by_one_follow_up_call(
    http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(
        reply(with_dangling_edge(shortener())), reply(shortener()), reply(narrative())
    )
    sketch = wait_for(http, create(http)["id"])
    assert sketch["status"] == "completed"
    assert sketch["graph"] == shortener()
    assert sketch["repaired"] is True and sketch["problems"] == []
    bodies = [r.body for r in fake_openai.requests]
    assert [schema_name(b) for b in bodies] == [
        "architecture_graph",
        "architecture_graph",
        "design_narrative",
    ]
    repair = bodies[1]["messages"]
    assert repair[-2]["role"] == "assistant" and "ghost" in repair[-2]["content"]
    assert "unknown node 'ghost'" in repair[-1]["content"]


def test_a_graph_the_repair_did_not_fix_is_tidied_and_reported(
    http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    broken = with_dangling_edge(shortener())
    fake_openai.script(reply(broken), reply(broken), reply(narrative()))
    sketch = wait_for(http, create(http)["id"])
    assert sketch["status"] == "completed"
    assert sketch["graph"] == shortener()  # the dangling edge is dropped ...
    assert [p["code"] for p in sketch["problems"]] == ["dangling_edge"]  # ... and reported
    assert len(fake_openai.requests) == 3  # one repair call, not more


def test_revisions_keep_ids_stable_and_diff_as_expected(
    http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(reply(shortener()), reply(narrative()))
    sketch_id = wait_for(http, create(http)["id"])["id"]
    # The model renames the cache's id while changing it, and adds a search index.
    revised = copy.deepcopy(shortener())
    for item in revised["nodes"]:
        if item["id"] == "cache":
            item.update(id="memcached_cache", technology="Memcached")
    for item in revised["edges"]:
        if item["to"] == "cache":
            item["to"] = "memcached_cache"
    revised["nodes"].append(
        node("search", "search", "Link search", "data", technology="OpenSearch")
    )
    revised["edges"].append(edge("api", "search", "HTTP", data="queries"))
    fake_openai.reset()
    fake_openai.script(
        reply({"answer": "Swapped Redis for Memcached and added search.", "graph": revised}),
        reply(narrative()),
    )
    response = http.post(
        f"/v1/sketches/{sketch_id}/revise",
        json={"message": "use Memcached here and add a search index", "node_id": "cache"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "queued"
    sketch = wait_for(http, sketch_id)
    assert sketch["status"] == "completed" and sketch["version"] == 2
    ids = [n["id"] for n in sketch["graph"]["nodes"]]
    assert ids == [n["id"] for n in shortener()["nodes"]] + ["search"]  # "cache" kept its id
    revise_call = fake_openai.requests[0].body
    assert schema_name(revise_call) == "architecture_revision"
    assert "pointing at node 'cache'" in revise_call["messages"][-1]["content"]
    diff = http.get(f"/v1/sketches/{sketch_id}/diff").json()
    assert (diff["from"], diff["to"]) == (1, 2)
    assert [n["id"] for n in diff["nodes"]["added"]] == ["search"]
    assert diff["nodes"]["removed"] == []
    assert diff["nodes"]["changed"] == [
        {"id": "cache", "changes": {"technology": {"from": "Redis", "to": "Memcached"}}}
    ]
    assert [(e["from"], e["to"]) for e in diff["edges"]["added"]] == [("api", "search")]
    assert diff["edges"]["removed"] == [] and diff["edges"]["changed"] == []
    # A question is answered, kept in the document, and changes nothing (no narrative call).
    fake_openai.reset()
    answer = "A queue decouples counting clicks from redirecting."
    fake_openai.script(reply({"answer": answer, "graph": sketch["graph"]}))
    http.post(
        f"/v1/sketches/{sketch_id}/revise",
        json={"message": "why is this a queue?", "node_id": "clicks"},
    )
    third = wait_for(http, sketch_id)
    assert third["version"] == 3 and third["last_answer"] == answer
    assert third["graph"] == sketch["graph"]
    assert len(fake_openai.requests) == 1
    assert "## Discussion" in third["documents"][0]["content"]
    assert answer in third["documents"][0]["content"]
    unchanged = http.get(f"/v1/sketches/{sketch_id}/diff", params={"from": 2, "to": 3}).json()
    assert unchanged["nodes"] == {"added": [], "removed": [], "changed": []}
    first = http.get(f"/v1/sketches/{sketch_id}/versions/1").json()
    assert first["graph"] == shortener() and first["number"] == 1
    second = http.get(f"/v1/sketches/{sketch_id}/versions/2").json()
    assert second["message"] == "use Memcached here and add a search index"
    assert second["node_id"] == "cache"


def test_clarifying_questions_come_first_and_their_answers_reach_the_model(
    http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    questions = ["How many redirects per second?", "Do links expire?"]
    fake_openai.script(reply({"questions": questions}))
    created = create(http, options={"clarify": True})
    waiting = wait_for(http, created["id"])
    assert waiting["status"] == "awaiting_answers" and waiting["questions"] == questions
    assert schema_name(fake_openai.requests[0].body) == "clarifying_questions"
    fake_openai.script(reply(shortener()), reply(narrative()))
    response = http.post(
        f"/v1/sketches/{created['id']}/answers", json={"answers": ["10k", "after a year"]}
    )
    assert response.status_code == 200, response.text
    sketch = wait_for(http, created["id"])
    assert sketch["status"] == "completed" and sketch["answers"] == ["10k", "after a year"]
    prompt = fake_openai.requests[1].body["messages"][-1]["content"]
    assert "How many redirects per second? 10k" in prompt


def test_every_format_downloads_over_http(http: httpx.Client, fake_openai: FakeOpenAI) -> None:
    fake_openai.script(reply(shortener()), reply(narrative()))
    sketch_id = wait_for(http, create(http)["id"])["id"]
    expected = {
        "svg": ("image/svg+xml", b"<svg"),
        "png": ("image/png", b"\x89PNG"),
        "mermaid": ("text/vnd.mermaid", b"---\ntitle: URL shortener"),
        "architecture": ("text/vnd.mermaid", b"architecture-beta"),
        "dot": ("text/vnd.graphviz", b"digraph sketch"),
        "d2": ("text/plain", b"direction: down"),
        "drawio": ("application/xml", b"<?xml"),
        "json": ("application/json", b"{"),
        "markdown": ("text/markdown", b"# URL shortener"),
    }
    for name, (media_type, start) in expected.items():
        response = http.get(f"/v1/sketches/{sketch_id}/export/{name}", params={"download": 1})
        assert response.status_code == 200, (name, response.text)
        assert response.headers["content-type"].startswith(media_type), name
        assert response.content.startswith(start), name
        assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert orjson.loads(http.get(f"/v1/sketches/{sketch_id}/export/json").content) == shortener()
    old = http.get(f"/v1/sketches/{sketch_id}/export/svg", params={"version": 1})
    assert old.status_code == 200


def test_a_model_error_fails_the_sketch_with_that_error(
    http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(Fail(status=400, message="bad schema", error_type="invalid_request_error"))
    sketch = wait_for(http, create(http)["id"])
    assert sketch["status"] == "failed" and sketch["version"] == 0
    assert "bad schema" in sketch["error"]["message"]


def test_bad_requests_are_openai_errors(http: httpx.Client, fake_openai: FakeOpenAI) -> None:
    assert_error(http.post("/v1/sketches", json={}), 400, "description")
    assert_error(http.post("/v1/sketches", json={"description": ""}), 400, "description")
    assert_error(
        http.post("/v1/sketches", json={"description": "x", "options": {"max_nodes": 500}}),
        400,
        "options.max_nodes",
    )
    error = assert_error(http.post("/v1/sketches", json={"description": "x", "model": "nope"}), 404)
    assert error["code"] == "model_not_found"
    assert_error(http.get("/v1/sketches/sketch_missing"), 404, "sketch_id")
    fake_openai.script(reply(shortener()), reply(narrative()))
    sketch_id = wait_for(http, create(http)["id"])["id"]
    assert_error(http.get(f"/v1/sketches/{sketch_id}/export/gif"), 400, "format")
    assert_error(http.get(f"/v1/sketches/{sketch_id}/versions/9"), 404)
    assert_error(http.get(f"/v1/sketches/{sketch_id}/versions/x"), 400)
    assert_error(http.get(f"/v1/sketches/{sketch_id}/diff", params={"from": "a"}), 400, "from")
    assert_error(
        http.post(f"/v1/sketches/{sketch_id}/revise", json={"message": "x", "node_id": "nope"}),
        400,
        "node_id",
    )
    assert_error(http.post(f"/v1/sketches/{sketch_id}/answers", json={"answers": ["a"]}), 400)
    fake_openai.script(reply(shortener()), reply(narrative()))
    busy = create(http)  # queued: not yet revisable
    response = http.post(f"/v1/sketches/{busy['id']}/revise", json={"message": "x"})
    if response.status_code != 200:  # it may already have completed on a fast machine
        assert assert_error(response, 400)["code"] == "invalid_state"
    wait_for(http, busy["id"])


def test_sketches_are_listed_and_deleted_per_tenant(
    server: PortwayServer, http: httpx.Client, fake_openai: FakeOpenAI
) -> None:
    alice = server.create_key(MASTER, name="alice")["key"]
    bob = server.create_key(MASTER, name="bob")["key"]
    fake_openai.script(reply(shortener()), reply(narrative()))
    as_alice = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {alice}"})
    as_bob = httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {bob}"})
    with as_alice, as_bob:
        sketch_id = wait_for(as_alice, create(as_alice)["id"])["id"]
        assert [s["id"] for s in as_alice.get("/v1/sketches").json()["data"]] == [sketch_id]
        assert as_bob.get("/v1/sketches").json()["data"] == []
        for method, path, body in (
            ("GET", f"/v1/sketches/{sketch_id}", None),
            ("GET", f"/v1/sketches/{sketch_id}/versions/1", None),
            ("GET", f"/v1/sketches/{sketch_id}/diff", None),
            ("GET", f"/v1/sketches/{sketch_id}/export/svg", None),
            ("POST", f"/v1/sketches/{sketch_id}/revise", {"message": "add a cache"}),
            ("POST", f"/v1/sketches/{sketch_id}/answers", {"answers": ["x"]}),
            ("DELETE", f"/v1/sketches/{sketch_id}", None),
        ):
            assert_error(as_bob.request(method, path, json=body), 404)
        deleted = as_alice.delete(f"/v1/sketches/{sketch_id}")
        assert deleted.json() == {"id": sketch_id, "object": "sketch.deleted", "deleted": True}
        assert_error(as_alice.get(f"/v1/sketches/{sketch_id}"), 404)
