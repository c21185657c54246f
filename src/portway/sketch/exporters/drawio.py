"""draw.io (diagrams.net) XML: one vertex cell per component, one edge cell per
connection, tiers as containers behind their members, positions from the layout."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from portway.sketch.exporters.layout import Layout, layout
from portway.sketch.exporters.mermaid import group_id
from portway.sketch.graph import Graph

_STYLES = {
    "database": "shape=cylinder3;boundedLbl=1;size=12;",
    "storage": "shape=cylinder3;boundedLbl=1;size=12;",
    "cache": "shape=cylinder3;boundedLbl=1;size=12;",
    "queue": "shape=process;",
    "client": "ellipse;",
    "cdn": "shape=hexagon;perimeter=hexagonPerimeter2;",
    "load_balancer": "shape=hexagon;perimeter=hexagonPerimeter2;",
    "gateway": "shape=hexagon;perimeter=hexagonPerimeter2;",
    "external": "shape=cloud;",
}
PAD = 16.0


def cell_id(node_id: str) -> str:
    return "n_" + node_id


def drawio(graph: Graph, laid: Layout | None = None) -> str:
    laid = laid or layout(graph)
    cells = ['<mxCell id="0"/>', '<mxCell id="1" parent="0"/>']
    for group, members in graph.groups().items():
        if not group:
            continue
        boxes = [laid.boxes[node.id] for node in members]
        left = min(box.left for box in boxes) - PAD
        top = min(box.top for box in boxes) - PAD - 14
        right = max(box.left + box.w for box in boxes) + PAD
        bottom = max(box.top + box.h for box in boxes) + PAD
        cells.append(
            f"<mxCell id={quoteattr(group_id(group))} value={quoteattr(graph.group_label(group))}"
            ' style="rounded=1;dashed=1;fillColor=none;verticalAlign=top;align=left;'
            'spacingLeft=6;" vertex="1" parent="1">'
            f'<mxGeometry x="{left:.0f}" y="{top:.0f}" width="{right - left:.0f}" '
            f'height="{bottom - top:.0f}" as="geometry"/></mxCell>'
        )
    for node in graph.components:
        box = laid.boxes[node.id]
        value = node.label + (f"\n{node.technology}" if node.technology else "")
        style = "rounded=1;whiteSpace=wrap;html=0;" + _STYLES.get(node.kind, "")
        if node.external:
            style += "dashed=1;"
        cells.append(
            f"<mxCell id={quoteattr(cell_id(node.id))} value={quoteattr(value)} "
            f'style={quoteattr(style)} vertex="1" parent="1">'
            f'<mxGeometry x="{box.left:.0f}" y="{box.top:.0f}" width="{box.w:.0f}" '
            f'height="{box.h:.0f}" as="geometry"/></mxCell>'
        )
    for index, (edge, _) in enumerate(laid.edges):
        label = " ".join(part for part in (edge.protocol, edge.data) if part)
        style = "edgeStyle=orthogonalEdgeStyle;rounded=1;endArrow=classic;html=0;"
        if edge.mode == "async":
            style += "dashed=1;"
        cells.append(
            f'<mxCell id="e_{index}" value={quoteattr(label)} style={quoteattr(style)} '
            f'edge="1" parent="1" source={quoteattr(cell_id(edge.source))} '
            f"target={quoteattr(cell_id(edge.target))}>"
            '<mxGeometry relative="1" as="geometry"/></mxCell>'
        )
    body = "\n".join(cells)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<mxfile host="portway" type="device">\n'
        f'<diagram id="sketch" name={quoteattr(graph.title)}>\n'
        f'<mxGraphModel dx="{laid.width:.0f}" dy="{laid.height:.0f}" grid="1" gridSize="10" '
        'guides="1" arrows="1" connect="1" page="0">\n'
        f"<root>\n{body}\n</root>\n</mxGraphModel>\n</diagram>\n</mxfile>\n"
    )
