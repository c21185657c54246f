"""The sketch's typed graph: components (nodes) and their connections (edges).

A graph is plain data (frozen dataclasses) with a JSON form that is both what the API
shows and what the model is asked to write (``GRAPH_SCHEMA``). ``parse_graph`` turns a
model's (or a client's) JSON into a graph leniently: it keeps what it can read and
reports what it could not, so validation can ask for a repair instead of failing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

# The fixed vocabulary of component kinds (InfraSketch's, plus clients and externals).
KINDS: tuple[str, ...] = (
    "client",
    "cdn",
    "load_balancer",
    "gateway",
    "api",
    "server",
    "service",
    "queue",
    "cache",
    "database",
    "storage",
    "search",
    "external",
    "group",
)
MODES: tuple[str, ...] = ("sync", "async")
Mode = Literal["sync", "async"]

MAX_NODES = 40
MAX_EDGES = 80
ID_PATTERN = "^[a-z][a-z0-9_]{0,31}$"
_ID = re.compile(ID_PATTERN)
_NOT_ID = re.compile(r"[^a-z0-9_]+")


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    kind: str
    label: str
    technology: str = ""
    responsibility: str = ""
    group: str = ""
    scaling: str = ""
    external: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "label": self.label,
            "technology": self.technology,
            "responsibility": self.responsibility,
            "group": self.group,
            "scaling": self.scaling,
            "external": self.external,
        }


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    protocol: str = ""
    mode: Mode = "sync"
    data: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.target)

    def to_json(self) -> dict[str, Any]:
        return {
            "from": self.source,
            "to": self.target,
            "protocol": self.protocol,
            "mode": self.mode,
            "data": self.data,
        }


@dataclass(frozen=True, slots=True)
class Graph:
    title: str
    nodes: tuple[Node, ...] = ()
    edges: tuple[Edge, ...] = ()

    def node(self, node_id: str) -> Node | None:
        return next((node for node in self.nodes if node.id == node_id), None)

    @property
    def components(self) -> tuple[Node, ...]:
        """The nodes drawn as boxes (``group`` nodes are clusters around others)."""
        return tuple(node for node in self.nodes if node.kind != "group")

    def group_label(self, group: str) -> str:
        """A tier's display name: its ``group`` node's label when there is one."""
        found = self.node(group)
        return found.label if found is not None and found.kind == "group" else group

    def groups(self) -> dict[str, list[Node]]:
        """Components by tier (``""``: not in any), in first-seen order."""
        grouped: dict[str, list[Node]] = {}
        for node in self.components:
            grouped.setdefault(node.group, []).append(node)
        return grouped

    def with_nodes(self, nodes: tuple[Node, ...]) -> Graph:
        return replace(self, nodes=nodes)

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "nodes": [node.to_json() for node in self.nodes],
            "edges": [edge.to_json() for edge in self.edges],
        }


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """Something in the JSON that could not become part of the graph."""

    where: str
    message: str


@dataclass(slots=True)
class Parsed:
    graph: Graph
    issues: list[ParseIssue] = field(default_factory=list)


def slug(text: str) -> str:
    """``text`` as a node id (``User Service`` → ``user_service``)."""
    value = _NOT_ID.sub("_", text.strip().lower()).strip("_")
    if not value or not value[0].isalpha():
        value = "n_" + value
    return value[:32].rstrip("_") or "node"


def _text(value: Any, limit: int = 400) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def parse_graph(data: Any) -> Parsed:
    """A graph from JSON, keeping every readable part; unreadable parts become issues."""
    issues: list[ParseIssue] = []
    if not isinstance(data, dict):
        return Parsed(Graph(title=""), [ParseIssue("$", "the graph must be a JSON object")])
    nodes: list[Node] = []
    for index, raw in enumerate(data.get("nodes") or []):
        where = f"nodes[{index}]"
        if not isinstance(raw, dict):
            issues.append(ParseIssue(where, "a node must be an object"))
            continue
        label = _text(raw.get("label"), 80) or _text(raw.get("id"), 80)
        node_id = _text(raw.get("id"), 64)
        if not node_id and not label:
            issues.append(ParseIssue(where, "a node needs an id or a label"))
            continue
        if not _ID.match(node_id):
            node_id = slug(node_id or label)
        kind = _text(raw.get("kind"), 40).lower().replace(" ", "_").replace("-", "_")
        if kind not in KINDS:
            issues.append(ParseIssue(where, f"unknown kind {kind!r} (read as 'service')"))
            kind = "service"
        nodes.append(
            Node(
                id=node_id,
                kind=kind,
                label=label or node_id,
                technology=_text(raw.get("technology"), 80),
                responsibility=_text(raw.get("responsibility")),
                group=_text(raw.get("group"), 60),
                scaling=_text(raw.get("scaling")),
                external=raw.get("external") is True,
            )
        )
    edges: list[Edge] = []
    for index, raw in enumerate(data.get("edges") or []):
        where = f"edges[{index}]"
        if not isinstance(raw, dict):
            issues.append(ParseIssue(where, "an edge must be an object"))
            continue
        source, target = _text(raw.get("from"), 64), _text(raw.get("to"), 64)
        if not source or not target:
            issues.append(ParseIssue(where, "an edge needs 'from' and 'to'"))
            continue
        mode = raw.get("mode")
        edges.append(
            Edge(
                source=source,
                target=target,
                protocol=_text(raw.get("protocol"), 40),
                mode=mode if mode in MODES else "sync",
                data=_text(raw.get("data"), 120),
            )
        )
    title = _text(data.get("title"), 120) or "Architecture"
    return Parsed(Graph(title=title, nodes=tuple(nodes), edges=tuple(edges)), issues)


def graph_schema(max_nodes: int = MAX_NODES, max_edges: int = MAX_EDGES) -> dict[str, Any]:
    """The JSON schema a model writes a graph in (strict: every field required)."""
    node = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": ID_PATTERN},
            "kind": {"type": "string", "enum": list(KINDS)},
            # Short bounds keep small local models from rambling inside one field.
            "label": {"type": "string", "maxLength": 40},
            "technology": {"type": "string", "maxLength": 40},
            "responsibility": {"type": "string", "maxLength": 120},
            "group": {"type": "string", "maxLength": 30},
            "scaling": {"type": "string", "maxLength": 80},
            "external": {"type": "boolean"},
        },
        "required": [
            "id",
            "kind",
            "label",
            "technology",
            "responsibility",
            "group",
            "scaling",
            "external",
        ],
        "additionalProperties": False,
    }
    edge = {
        "type": "object",
        "properties": {
            "from": {"type": "string", "pattern": ID_PATTERN},
            "to": {"type": "string", "pattern": ID_PATTERN},
            "protocol": {"type": "string", "maxLength": 20},
            "mode": {"type": "string", "enum": list(MODES)},
            "data": {"type": "string", "maxLength": 60},
        },
        "required": ["from", "to", "protocol", "mode", "data"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 60},
            "nodes": {"type": "array", "items": node, "minItems": 2, "maxItems": max_nodes},
            "edges": {"type": "array", "items": edge, "minItems": 1, "maxItems": max_edges},
        },
        "required": ["title", "nodes", "edges"],
        "additionalProperties": False,
    }
