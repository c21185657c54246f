"""Graphviz DOT and D2: text formats their own tools lay out."""

from __future__ import annotations

from portway.sketch.exporters.mermaid import group_id
from portway.sketch.graph import Graph, Node

_DOT_SHAPES = {
    "client": "ellipse",
    "cdn": "hexagon",
    "load_balancer": "hexagon",
    "gateway": "hexagon",
    "database": "cylinder",
    "storage": "cylinder",
    "cache": "cylinder",
    "queue": "box3d",
    "external": "component",
}
_D2_SHAPES = {
    "client": "person",
    "cdn": "cloud",
    "load_balancer": "hexagon",
    "gateway": "hexagon",
    "database": "cylinder",
    "storage": "stored_data",
    "cache": "cylinder",
    "queue": "queue",
    "external": "cloud",
}


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def _dot_node(node: Node) -> str:
    label = _dot_string(node.label)
    if node.technology:
        label = label[:-1] + "\\n" + _dot_string(node.technology)[1:]
    attrs = [f"label={label}", f"shape={_DOT_SHAPES.get(node.kind, 'box')}"]
    if node.external:
        attrs.append('style="rounded,dashed"')
    return f"{_dot_string(node.id)} [{', '.join(attrs)}];"


def dot(graph: Graph) -> str:
    lines = [
        "digraph sketch {",
        f"    graph [rankdir=TB, label={_dot_string(graph.title)}, labelloc=t, "
        'fontname="Helvetica"];',
        '    node [shape=box, style="rounded", fontname="Helvetica"];',
        '    edge [fontname="Helvetica", fontsize=10];',
    ]
    for group, members in graph.groups().items():
        indent = "    "
        if group:
            lines.append(f"    subgraph {_dot_string('cluster_' + group_id(group))} {{")
            lines.append(f"        label={_dot_string(graph.group_label(group))};")
            indent = "        "
        lines.extend(indent + _dot_node(node) for node in members)
        if group:
            lines.append("    }")
    known = {node.id for node in graph.components}
    for edge in graph.edges:
        if edge.source not in known or edge.target not in known:
            continue
        attrs = []
        label = " ".join(part for part in (edge.protocol, edge.data) if part)
        if label:
            attrs.append(f"label={_dot_string(label)}")
        if edge.mode == "async":
            attrs.append("style=dashed")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {_dot_string(edge.source)} -> {_dot_string(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


_D2_RESERVED = frozenset(
    {
        "shape",
        "style",
        "label",
        "near",
        "direction",
        "icon",
        "width",
        "height",
        "link",
        "tooltip",
        "class",
        "classes",
        "vars",
        "title",
        "constraint",
        "top",
        "left",
        "layers",
        "scenarios",
        "steps",
        "grid-rows",
        "grid-columns",
        "grid-gap",
    }
)


def _d2_id(node_id: str) -> str:
    return node_id + "_" if node_id in _D2_RESERVED else node_id


def _d2_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("\n", "\\n") + '"'


def d2(graph: Graph) -> str:
    lines = ["direction: down", f"title: {_d2_string(graph.title)} {{near: top-center}}"]
    path: dict[str, str] = {}
    for group, members in graph.groups().items():
        indent = ""
        if group:
            lines.append(f"{group_id(group)}: {_d2_string(graph.group_label(group))} {{")
            indent = "  "
        for node in members:
            path[node.id] = f"{group_id(group)}.{_d2_id(node.id)}" if group else _d2_id(node.id)
            label = node.label + (f"\n{node.technology}" if node.technology else "")
            lines.append(f"{indent}{_d2_id(node.id)}: {_d2_string(label)} {{")
            lines.append(f"{indent}  shape: {_D2_SHAPES.get(node.kind, 'rectangle')}")
            if node.external:
                lines.append(f"{indent}  style.stroke-dash: 4")
            lines.append(f"{indent}}}")
        if group:
            lines.append("}")
    for edge in graph.edges:
        if edge.source not in path or edge.target not in path:
            continue
        label = " ".join(part for part in (edge.protocol, edge.data) if part)
        line = f"{path[edge.source]} -> {path[edge.target]}"
        if label:
            line += f": {_d2_string(label)}"
        if edge.mode == "async":
            line += " {style.stroke-dash: 3}"
        lines.append(line)
    return "\n".join(lines) + "\n"
