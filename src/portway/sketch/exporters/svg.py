"""A self-contained SVG of the graph (server-side layout), and PNG from it when a
renderer is installed.

Each component is a ``<g class="node" data-node-id=...>`` (the page makes them
clickable); colours follow the kind, the box's outline its tier (listed in a legend),
dashed lines are asynchronous connections and dashed boxes external systems.
"""

from __future__ import annotations

import math
import re
from xml.sax.saxutils import escape, quoteattr

from portway.sketch.exporters.layout import Layout, Point, layout
from portway.sketch.graph import Graph

_FILL = {
    "client": "#f1f5f9",
    "cdn": "#e0f2fe",
    "load_balancer": "#e0e7ff",
    "gateway": "#ede9fe",
    "api": "#dbeafe",
    "server": "#dbeafe",
    "service": "#dcfce7",
    "queue": "#fef3c7",
    "cache": "#fee2e2",
    "database": "#ffedd5",
    "storage": "#fae8ff",
    "search": "#ccfbf1",
    "external": "#f5f5f4",
}
_TIER_COLOURS = ("#2563eb", "#16a34a", "#d97706", "#9333ea", "#dc2626", "#0891b2", "#4b5563")
MAX_PNG_PIXELS = 2_500_000
_SIZE = re.compile(r'<svg [^>]*width="([0-9.]+)" height="([0-9.]+)"')
FONT = "DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif"


def _path(points: list[Point]) -> str:
    return "M " + " L ".join(f"{x:.1f} {y:.1f}" for x, y in points)


def _midpoint(points: list[Point]) -> Point:
    middle = len(points) // 2
    if len(points) % 2:
        return points[middle]
    (x1, y1), (x2, y2) = points[middle - 1], points[middle]
    return ((x1 + x2) / 2, (y1 + y2) / 2)


def svg(graph: Graph, laid: Layout | None = None) -> str:
    laid = laid or layout(graph)
    tiers = [group for group in graph.groups() if group]
    colour = {tier: _TIER_COLOURS[i % len(_TIER_COLOURS)] for i, tier in enumerate(tiers)}
    legend_height = 22.0 * len(tiers) + (16 if tiers else 0)
    width, height = laid.width, laid.height + legend_height
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family={quoteattr(FONT)} font-size="12">',
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#475569"/></marker>',
        "</defs>",
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
        f'<text class="title" x="{width / 2:.0f}" y="30" text-anchor="middle" font-size="16" '
        f'font-weight="bold" fill="#0f172a">{escape(graph.title)}</text>',
    ]
    for edge, points in laid.edges:
        dash = ' stroke-dasharray="6 4"' if edge.mode == "async" else ""
        out.append(
            f'<g class="edge" data-from={quoteattr(edge.source)} data-to={quoteattr(edge.target)}>'
            f'<path d="{_path(points)}" fill="none" stroke="#475569" stroke-width="1.4"'
            f'{dash} marker-end="url(#arrow)"/>'
        )
        label = edge.protocol or edge.data
        if label:
            x, y = _midpoint(points)
            out.append(
                f'<text x="{x + 4:.1f}" y="{y - 4:.1f}" font-size="10" fill="#334155" '
                f'paint-order="stroke" stroke="#ffffff" stroke-width="3">{escape(label)}</text>'
            )
        out.append("</g>")
    for node in graph.components:
        box = laid.boxes[node.id]
        stroke = colour.get(node.group, "#64748b")
        dash = ' stroke-dasharray="5 3"' if node.external else ""
        tip = " - ".join(part for part in (node.label, node.responsibility) if part)
        out.append(
            f'<g class="node" data-node-id={quoteattr(node.id)} data-kind={quoteattr(node.kind)} '
            f'style="cursor:pointer"><title>{escape(tip)}</title>'
            f'<rect x="{box.left:.1f}" y="{box.top:.1f}" width="{box.w:.1f}" '
            f'height="{box.h:.1f}" rx="8" fill="{_FILL.get(node.kind, "#ffffff")}" '
            f'stroke="{stroke}" stroke-width="1.6"{dash}/>'
            f'<text x="{box.x:.1f}" y="{box.top + 16:.1f}" text-anchor="middle" font-size="9" '
            f'fill="#64748b">{escape(node.kind.replace("_", " "))}</text>'
            f'<text class="label" x="{box.x:.1f}" y="{box.top + 32:.1f}" text-anchor="middle" '
            f'font-weight="bold" fill="#0f172a">{escape(node.label)}</text>'
        )
        if node.technology:
            out.append(
                f'<text x="{box.x:.1f}" y="{box.top + 46:.1f}" text-anchor="middle" '
                f'font-size="10" fill="#334155">{escape(node.technology)}</text>'
            )
        out.append("</g>")
    y = laid.height
    for tier in tiers:
        out.append(
            f'<g class="legend"><rect x="20" y="{y:.0f}" width="14" height="14" rx="3" '
            f'fill="none" stroke="{colour[tier]}" stroke-width="2"/>'
            f'<text x="42" y="{y + 11:.0f}" fill="#0f172a">'
            f"{escape(graph.group_label(tier))}</text></g>"
        )
        y += 22
    out.append("</svg>")
    return "\n".join(out) + "\n"


def png_renderer_available() -> bool:
    try:
        import resvg_py  # noqa: F401
    except ImportError:
        return False
    return True


def png_zoom(width: float, height: float) -> float:
    """2x for sharpness, less for large diagrams: rasterising and encoding cost grows
    with the pixel count (a 30-component chain is about 1400 x 3900 points)."""
    return max(0.5, min(2.0, math.sqrt(MAX_PNG_PIXELS / max(width * height, 1.0))))


def png(svg_text: str) -> bytes:
    """The SVG rasterised by resvg (``resvg-py``); ImportError when not installed."""
    import resvg_py

    size = _SIZE.search(svg_text)
    zoom = png_zoom(float(size[1]), float(size[2])) if size else 1.0
    return bytes(resvg_py.svg_to_bytes(svg_string=svg_text, zoom=zoom, background="white"))
