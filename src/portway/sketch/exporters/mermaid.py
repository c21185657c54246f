"""Mermaid: a flowchart, an ``architecture-beta`` diagram and the main flow's sequence."""

from __future__ import annotations

import re

from portway.sketch.graph import Edge, Graph, Node, slug

# Words a flowchart reads as keywords where a node id stands.
_RESERVED = frozenset(
    {
        "end",
        "graph",
        "flowchart",
        "subgraph",
        "direction",
        "style",
        "class",
        "classdef",
        "click",
        "linkstyle",
        "call",
        "href",
        "default",
        "interpolate",
        "participant",
        "actor",
        "group",
        "service",
        "junction",
        "in",
    }
)
_SHAPES = {
    "client": ('(["', '"])'),
    "cdn": ('{{"', '"}}'),
    "load_balancer": ('{{"', '"}}'),
    "gateway": ('{{"', '"}}'),
    "database": ('[("', '")]'),
    "storage": ('[("', '")]'),
    "cache": ('[("', '")]'),
    "queue": ('[["', '"]]'),
    "external": ('>"', '"]'),
}
_ICONS = {
    "database": "database",
    "cache": "database",
    "storage": "disk",
    "cdn": "internet",
    "client": "internet",
    "external": "cloud",
}
_PLAIN = re.compile(r"[^A-Za-z0-9 _.,/+()-]+")


def mermaid_id(node_id: str) -> str:
    return node_id + "_" if node_id.lower() in _RESERVED else node_id


def group_id(group: str) -> str:
    return "grp_" + slug(group)


def _quoted(text: str) -> str:
    """Text inside a quoted Mermaid label (entity codes for what would end it)."""
    return (
        text.replace("&", "#amp;")
        .replace('"', "#quot;")
        .replace("<", "#lt;")
        .replace(">", "#gt;")
        .replace("\n", " ")
    )


def _plain(text: str) -> str:
    """Text for ``architecture-beta`` titles, which allow no quoting at all."""
    return " ".join(_PLAIN.sub(" ", text).split()) or "-"


def _node_line(node: Node) -> str:
    opening, closing = _SHAPES.get(node.kind, ('["', '"]'))
    text = _quoted(node.label)
    if node.technology:
        text += "<br/><small>" + _quoted(node.technology) + "</small>"
    return f"{mermaid_id(node.id)}{opening}{text}{closing}"


def _arrow(edge: Edge) -> str:
    arrow = "-.->" if edge.mode == "async" else "-->"
    label = " ".join(part for part in (edge.protocol, edge.data) if part)
    middle = f'|"{_quoted(label)}"|' if label else ""
    return f"{mermaid_id(edge.source)} {arrow}{middle} {mermaid_id(edge.target)}"


def flowchart(graph: Graph) -> str:
    lines = ["---", f"title: {_plain(graph.title)}", "---", "flowchart TB"]
    for group, members in graph.groups().items():
        indent = "    "
        if group:
            lines.append(f'    subgraph {group_id(group)}["{_quoted(graph.group_label(group))}"]')
            indent = "        "
        lines.extend(indent + _node_line(node) for node in members)
        if group:
            lines.append("    end")
    known = {node.id for node in graph.components}
    for edge in graph.edges:
        if edge.source in known and edge.target in known:
            lines.append("    " + _arrow(edge))
    lines.append("    classDef external stroke-dasharray: 4 3")
    externals = [mermaid_id(node.id) for node in graph.components if node.external]
    if externals:
        lines.append(f"    class {','.join(externals)} external")
    return "\n".join(lines) + "\n"


def architecture(graph: Graph) -> str:
    lines = ["architecture-beta"]
    groups = [group for group in graph.groups() if group]
    for group in groups:
        lines.append(f"    group {group_id(group)}(cloud)[{_plain(graph.group_label(group))}]")
    for node in graph.components:
        icon = _ICONS.get(node.kind, "server")
        where = f" in {group_id(node.group)}" if node.group else ""
        lines.append(f"    service {mermaid_id(node.id)}({icon})[{_plain(node.label)}]{where}")
    known = {node.id for node in graph.components}
    for edge in graph.edges:
        if edge.source in known and edge.target in known:
            lines.append(f"    {mermaid_id(edge.source)}:B --> T:{mermaid_id(edge.target)}")
    return "\n".join(lines) + "\n"


def main_flow(graph: Graph, limit: int = 12) -> list[Edge]:
    """The main request path: from the first entry point (a client, else a node nobody
    calls), following synchronous calls first, each edge at most once."""
    components = graph.components
    if not components:
        return []
    targets = {edge.target for edge in graph.edges}
    entry = next(
        (node for node in components if node.kind == "client"),
        next((node for node in components if node.id not in targets), components[0]),
    )
    outgoing: dict[str, list[Edge]] = {}
    for edge in sorted(graph.edges, key=lambda e: e.mode != "sync"):
        outgoing.setdefault(edge.source, []).append(edge)
    flow: list[Edge] = []
    visited = {entry.id}
    stack = [entry.id]
    while stack and len(flow) < limit:
        current = stack.pop()
        for edge in reversed(outgoing.get(current, [])):
            if edge.target not in visited:
                visited.add(edge.target)
                stack.append(edge.target)
        for edge in outgoing.get(current, []):
            if len(flow) < limit and edge not in flow:
                flow.append(edge)
    return flow


def sequence(graph: Graph) -> str:
    """A ``sequenceDiagram`` of the main flow (requests, and replies to sync calls)."""
    flow = main_flow(graph)
    lines = ["sequenceDiagram"]
    seen: list[str] = []
    for edge in flow:
        for end in (edge.source, edge.target):
            if end not in seen:
                seen.append(end)
    for node_id in seen:
        node = graph.node(node_id)
        label = _plain(node.label) if node is not None else node_id
        lines.append(f"    participant {mermaid_id(node_id)} as {label}")
    for edge in flow:
        text = _plain(" ".join(p for p in (edge.protocol, edge.data) if p) or "call")
        arrow = "-)" if edge.mode == "async" else "->>"
        lines.append(f"    {mermaid_id(edge.source)}{arrow}{mermaid_id(edge.target)}: {text}")
    for edge in reversed(flow):
        if edge.mode == "sync":
            lines.append(f"    {mermaid_id(edge.target)}-->>{mermaid_id(edge.source)}: reply")
    return "\n".join(lines) + "\n"
