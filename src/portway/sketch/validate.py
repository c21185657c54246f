"""Graph validation: unique ids, no dangling edges, no orphans unless declared external.

``problems`` lists what is wrong in words a model can act on (the repair call sends
them back); ``tidy`` is the deterministic last resort after a repair that did not fix
everything: it drops what cannot be drawn (duplicates, dangling edges) and keeps the
rest, so a sketch is never lost to one bad edge. What it dropped is reported.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from portway.sketch.graph import Graph, Node, ParseIssue


@dataclass(frozen=True, slots=True)
class Problem:
    code: str  # duplicate_id | dangling_edge | orphan | self_loop | empty | unreadable
    message: str
    ref: str = ""

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "ref": self.ref}


def problems(graph: Graph, issues: list[ParseIssue] | None = None) -> list[Problem]:
    """Everything that keeps ``graph`` from being a valid architecture graph."""
    found = [Problem("unreadable", f"{issue.where}: {issue.message}") for issue in issues or ()]
    components = graph.components
    if len(components) < 1:
        found.append(Problem("empty", "the graph has no components"))
    counts = Counter(node.id for node in graph.nodes)
    for node_id, count in counts.items():
        if count > 1:
            found.append(
                Problem("duplicate_id", f"node id '{node_id}' is used {count} times", node_id)
            )
    ids = set(counts)
    for edge in graph.edges:
        ref = f"{edge.source}->{edge.target}"
        for end in (edge.source, edge.target):
            if end not in ids:
                found.append(
                    Problem("dangling_edge", f"edge {ref} refers to unknown node '{end}'", ref)
                )
        if edge.source == edge.target:
            found.append(Problem("self_loop", f"edge {ref} connects a node to itself", ref))
    connected = {end for edge in graph.edges for end in edge.key}
    if len(components) > 1:
        for node in components:
            if node.id not in connected and not node.external:
                found.append(
                    Problem(
                        "orphan",
                        f"node '{node.id}' has no connection (connect it or mark it external)",
                        node.id,
                    )
                )
    return found


def tidy(graph: Graph) -> Graph:
    """Drop what cannot be drawn: repeated ids (first wins), dangling edges, self loops
    and repeated edges. Orphans stay (they are drawn, and reported)."""
    seen: set[str] = set()
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.id not in seen:
            seen.add(node.id)
            nodes.append(node)
    edges = []
    pairs: set[tuple[str, str]] = set()
    for edge in graph.edges:
        drawable = edge.source in seen and edge.target in seen and edge.source != edge.target
        if drawable and edge.key not in pairs:
            pairs.add(edge.key)
            edges.append(edge)
    return Graph(title=graph.title, nodes=tuple(nodes), edges=tuple(edges))
