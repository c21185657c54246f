"""The design document: Markdown from the graph plus a model-written narrative.

The structure (components table, connections, diagrams, per-component failure modes)
comes from the graph, so it is right whatever the model wrote; the narrative fills in
the overview, the use cases, scaling, security and open questions. Where the model
gave nothing usable, the sections say so or fall back to what the graph itself shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from portway.sketch.exporters.mermaid import flowchart, main_flow, sequence
from portway.sketch.graph import Graph, Node

# What goes wrong with each kind of component and how this gateway's vocabulary
# (timeouts, retries, circuit breakers, fallbacks, rate limits, queues) answers it.
FAILURE_DEFAULTS: dict[str, tuple[str, str]] = {
    "client": (
        "Network loss or a timed-out request.",
        "Retry with backoff and an idempotency key; show cached data while offline.",
    ),
    "cdn": (
        "Edge outage or origin unreachable.",
        "Serve stale content (stale-if-error); fall back to the origin through the balancer.",
    ),
    "load_balancer": (
        "Balancer instance lost; a backend stops answering.",
        "Run two or more behind one address; health checks take failed backends out.",
    ),
    "gateway": (
        "Overload or a slow upstream.",
        "Per-client rate limits and a priority queue; shed load with 429 and retry-after; "
        "a circuit breaker and timeouts per upstream.",
    ),
    "api": (
        "Instance crash or slow responses.",
        "Stateless replicas behind the balancer; callers use timeouts, bounded retries on "
        "idempotent calls and a circuit breaker.",
    ),
    "server": (
        "Instance crash or slow responses.",
        "Stateless replicas behind the balancer; timeouts, bounded retries and a breaker.",
    ),
    "service": (
        "Crash, slow dependency or a bad deploy.",
        "Timeouts on every call, retries with jittered backoff for idempotent work, a circuit "
        "breaker per dependency and a degraded fallback answer.",
    ),
    "queue": (
        "Broker unavailable or consumers fall behind.",
        "Producers retry with backoff and buffer; idempotent consumers; a dead-letter queue "
        "for poison messages; alert on lag.",
    ),
    "cache": (
        "Cache down or a miss storm.",
        "Fall back to the source of truth behind a breaker; TTL jitter and request "
        "coalescing so misses do not stampede the database.",
    ),
    "database": (
        "Primary failure, failover or connection exhaustion.",
        "Replicas and automatic failover; a bounded connection pool; retry idempotent "
        "writes with backoff; reads fall back to a replica.",
    ),
    "storage": (
        "Object store errors or throttling.",
        "Retries with backoff honouring retry-after; multi-zone replication; signed URLs "
        "so clients fetch directly.",
    ),
    "search": (
        "Index lagging or unavailable.",
        "Rebuild from the source of truth; fall back to a simpler database query.",
    ),
    "external": (
        "Third-party outage, rate limit or slow answers.",
        "Timeouts, retries honouring retry-after, a circuit breaker and a fallback (a cached "
        "or degraded answer, or a second provider).",
    ),
}


@dataclass(slots=True)
class UseCase:
    name: str
    steps: list[str]


@dataclass(slots=True)
class FailureMode:
    component: str
    failure: str
    mitigation: str


@dataclass(slots=True)
class Narrative:
    overview: str = ""
    use_cases: list[UseCase] = field(default_factory=list)
    failure_modes: list[FailureMode] = field(default_factory=list)
    scaling: str = ""
    security: str = ""
    open_questions: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "overview": self.overview,
            "use_cases": [{"name": u.name, "steps": u.steps} for u in self.use_cases],
            "failure_modes": [
                {"component": f.component, "failure": f.failure, "mitigation": f.mitigation}
                for f in self.failure_modes
            ],
            "scaling": self.scaling,
            "security": self.security,
            "open_questions": self.open_questions,
        }


def _str(value: Any, limit: int = 2000) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _strings(value: Any, limit: int = 20) -> list[str]:
    items = value if isinstance(value, list) else []
    return [text for text in (_str(item, 400) for item in items[:limit]) if text]


def parse_narrative(data: Any) -> Narrative:
    """A narrative from the model's JSON; unreadable parts are left empty."""
    if not isinstance(data, dict):
        return Narrative()
    use_cases = [
        UseCase(_str(item.get("name"), 120), _strings(item.get("steps")))
        for item in data.get("use_cases") or []
        if isinstance(item, dict) and _str(item.get("name"))
    ]
    failures = [
        FailureMode(
            _str(item.get("component"), 64),
            _str(item.get("failure"), 300),
            _str(item.get("mitigation"), 400),
        )
        for item in data.get("failure_modes") or []
        if isinstance(item, dict) and _str(item.get("failure"))
    ]
    return Narrative(
        overview=_str(data.get("overview")),
        use_cases=use_cases,
        failure_modes=failures,
        scaling=_str(data.get("scaling")),
        security=_str(data.get("security")),
        open_questions=_strings(data.get("open_questions")),
    )


def narrative_schema() -> dict[str, Any]:
    short = {"type": "string", "maxLength": 160}
    return {
        "type": "object",
        "properties": {
            "overview": {"type": "string", "maxLength": 700},
            "use_cases": {
                "type": "array",
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "maxLength": 60},
                        "steps": {"type": "array", "items": short, "maxItems": 6},
                    },
                    "required": ["name", "steps"],
                    "additionalProperties": False,
                },
            },
            "failure_modes": {
                "type": "array",
                "maxItems": 8,
                "items": {
                    "type": "object",
                    "properties": {
                        "component": {"type": "string", "maxLength": 32},
                        "failure": short,
                        "mitigation": short,
                    },
                    "required": ["component", "failure", "mitigation"],
                    "additionalProperties": False,
                },
            },
            "scaling": {"type": "string", "maxLength": 500},
            "security": {"type": "string", "maxLength": 500},
            "open_questions": {"type": "array", "items": short, "maxItems": 5},
        },
        "required": [
            "overview",
            "use_cases",
            "failure_modes",
            "scaling",
            "security",
            "open_questions",
        ],
        "additionalProperties": False,
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "-"


def _failures_for(node: Node, narrative: Narrative) -> list[tuple[str, str]]:
    found = [
        (mode.failure, mode.mitigation or "-")
        for mode in narrative.failure_modes
        if mode.component in (node.id, node.label)
    ]
    default = FAILURE_DEFAULTS.get(node.kind)
    if default is not None and not found:
        found.append(default)
    return found


@dataclass(frozen=True, slots=True)
class Exchange:
    """A question or change asked in a revision, and the model's answer."""

    version: int
    message: str
    answer: str
    node_id: str | None = None


def design_markdown(
    graph: Graph,
    narrative: Narrative,
    *,
    description: str,
    model: str,
    version: int,
    discussion: list[Exchange] | tuple[Exchange, ...] = (),
) -> str:
    names = {node.id: node.label for node in graph.nodes}
    out = [f"# {graph.title}", ""]
    out += [f"_Design document, version {version}, sketched by `{model}` through Portway._", ""]
    out += ["## Overview", "", narrative.overview or description, ""]
    out += ["**Request:** " + " ".join(description.split()), ""]
    out += ["## Architecture diagram", "", "```mermaid", flowchart(graph).rstrip(), "```", ""]
    out += [
        "## Components",
        "",
        "| Component | Kind | Technology | Responsibility | Tier | Scaling |",
        "|---|---|---|---|---|---|",
    ]
    for node in graph.components:
        label = node.label + (" (external)" if node.external else "")
        out.append(
            f"| {_cell(label)} (`{node.id}`) | {node.kind} | {_cell(node.technology)} | "
            f"{_cell(node.responsibility)} | {_cell(graph.group_label(node.group))} | "
            f"{_cell(node.scaling)} |"
        )
    out += [
        "",
        "### Connections",
        "",
        "| From | To | Protocol | Mode | Data |",
        "|---|---|---|---|---|",
    ]
    for edge in graph.edges:
        out.append(
            f"| {_cell(names.get(edge.source, edge.source))} | "
            f"{_cell(names.get(edge.target, edge.target))} | {_cell(edge.protocol)} | "
            f"{edge.mode} | {_cell(edge.data)} |"
        )
    out += ["", "## Data flow", ""]
    if narrative.use_cases:
        for case in narrative.use_cases:
            out += [f"### {case.name}", ""]
            out += [f"{i}. {step}" for i, step in enumerate(case.steps, 1)] or ["-"]
            out.append("")
    else:
        out += ["### Main request path", ""]
        for i, edge in enumerate(main_flow(graph), 1):
            how = " ".join(part for part in (edge.protocol, edge.mode) if part)
            carried = f": {edge.data}" if edge.data else ""
            out.append(
                f"{i}. {names.get(edge.source, edge.source)} → "
                f"{names.get(edge.target, edge.target)} ({how}){carried}"
            )
        out.append("")
    out += ["## Main flow (sequence)", "", "```mermaid", sequence(graph).rstrip(), "```", ""]
    out += ["## Failure modes and mitigations", ""]
    for node in graph.components:
        for failure, mitigation in _failures_for(node, narrative):
            out.append(f"- **{node.label}**: {failure} *Mitigation:* {mitigation}")
    out += ["", "## Scaling and capacity", ""]
    if narrative.scaling:
        out += [narrative.scaling, ""]
    out += [f"- **{n.label}**: {n.scaling}" for n in graph.components if n.scaling]
    out += ["", "## Security and privacy", ""]
    out += [
        narrative.security
        or "Encrypt every connection (TLS), authenticate service-to-service calls, keep "
        "secrets in a secret store, and log no personal data.",
        "",
    ]
    out += ["## Open questions", ""]
    out += [f"- {question}" for question in narrative.open_questions] or ["- None recorded."]
    if discussion:
        out += ["", "## Discussion", ""]
        for exchange in discussion:
            about = f" (about `{exchange.node_id}`)" if exchange.node_id else ""
            out += [f"**v{exchange.version}{about}: {exchange.message}**", "", exchange.answer, ""]
    return "\n".join(out).rstrip() + "\n"
