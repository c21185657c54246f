"""Helpers of the sketcher tests: scripted graphs, fake-upstream replies, waiting."""

from __future__ import annotations

import copy
import time
from typing import Any

import httpx
import orjson

from tests.fakes.openai_upstream import Reply

MODEL = "fake-gpt"
FINAL = frozenset({"completed", "failed", "awaiting_answers"})


def node(
    node_id: str, kind: str, label: str, group: str = "", *, external: bool = False, **extra: Any
) -> dict[str, Any]:
    return {
        "id": node_id,
        "kind": kind,
        "label": label,
        "technology": extra.get("technology", ""),
        "responsibility": extra.get("responsibility", ""),
        "group": group,
        "scaling": extra.get("scaling", ""),
        "external": external,
    }


def edge(
    source: str, target: str, protocol: str = "HTTPS", mode: str = "sync", data: str = ""
) -> dict[str, Any]:
    return {"from": source, "to": target, "protocol": protocol, "mode": mode, "data": data}


def shortener() -> dict[str, Any]:
    """A URL shortener with analytics: 8 components over 3 tiers, sync and async edges."""
    return {
        "title": "URL shortener",
        "nodes": [
            node("browser", "client", "Browser", external=True),
            node("cdn", "cdn", "CDN", "edge", technology="CloudFront"),
            node("lb", "load_balancer", "Load balancer", "edge", technology="Nginx"),
            node(
                "api",
                "api",
                "Shortener API",
                "app",
                technology="FastAPI",
                responsibility="Creates short links and resolves them",
                scaling="stateless",
            ),
            node("cache", "cache", "Link cache", "data", technology="Redis"),
            node("db", "database", "Links DB", "data", technology="PostgreSQL"),
            node("clicks", "queue", "Click events", "data", technology="Kafka"),
            node("analytics", "service", "Analytics", "app", technology="Flink"),
        ],
        "edges": [
            edge("browser", "cdn", data="GET /abc"),
            edge("cdn", "lb"),
            edge("lb", "api", "HTTP"),
            edge("api", "cache", "RESP", data="long URL"),
            edge("api", "db", "SQL", data="link rows"),
            edge("api", "clicks", "Kafka", "async", "click event"),
            edge("clicks", "analytics", "Kafka", "async", "click event"),
            edge("analytics", "db", "SQL", data="daily counts"),
        ],
    }


def large(count: int = 30) -> dict[str, Any]:
    """``count`` components in 4 tiers, a few fan-outs and a cycle."""
    kinds = ["api", "service", "cache", "database", "queue", "storage", "gateway", "search"]
    nodes = [node("client", "client", "Client", external=True)]
    nodes += [
        node(
            f"c{i}",
            kinds[i % len(kinds)],
            f'Component {i} "<&>"',
            f"tier {i % 4}",
            technology=f"Tech-{i}",
        )
        for i in range(1, count)
    ]
    edges = [edge("client", "c1")]
    edges += [
        edge(f"c{i}", f"c{i + 1}", "gRPC", "async" if i % 3 == 0 else "sync")
        for i in range(1, count - 1)
    ]
    edges += [edge("c1", f"c{i}", "HTTP") for i in range(5, count, 6)]
    edges.append(edge(f"c{count - 1}", "c2", "AMQP", "async"))
    return {"title": f"{count}-node system", "nodes": nodes, "edges": edges}


def narrative() -> dict[str, Any]:
    return {
        "overview": "Short links are resolved at the edge and counted asynchronously.",
        "use_cases": [
            {"name": "Resolve a link", "steps": ["The browser asks the CDN", "The API reads Redis"]}
        ],
        "failure_modes": [
            {"component": "cache", "failure": "Redis is down.", "mitigation": "Read PostgreSQL."}
        ],
        "scaling": "The API scales horizontally.",
        "security": "Links are public; the admin API needs a key.",
        "open_questions": ["How long are clicks kept?"],
    }


def reply(data: Any) -> Reply:
    """The fake upstream answering with ``data`` as JSON content."""
    text = data if isinstance(data, str) else orjson.dumps(data).decode()
    return Reply(content=text, prompt_tokens=50, completion_tokens=40)


def with_dangling_edge(graph: dict[str, Any]) -> dict[str, Any]:
    broken = copy.deepcopy(graph)
    broken["edges"].append(edge("api", "ghost", "HTTP"))
    return broken


def wait_for(http: httpx.Client, sketch_id: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(f"/v1/sketches/{sketch_id}")
        assert response.status_code == 200, response.text
        sketch = response.json()
        if sketch["status"] in FINAL:
            return sketch
        if time.monotonic() > deadline:
            raise AssertionError(f"sketch still {sketch['status']} ({sketch['stage']})")
        time.sleep(0.05)
