"""Deterministic exporters: the same graph always gives the same bytes (no model)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from portway.sketch.exporters.dot import d2, dot
from portway.sketch.exporters.drawio import drawio
from portway.sketch.exporters.layout import Layout, layout
from portway.sketch.exporters.mermaid import architecture, flowchart
from portway.sketch.exporters.svg import png, png_renderer_available, svg
from portway.sketch.graph import Graph

Render = Callable[[Graph, Layout, str], bytes]


@dataclass(frozen=True, slots=True)
class Format:
    name: str
    media_type: str
    filename: str
    render: Render
    needs_layout: bool = False


def _text(function: Callable[[Graph], str]) -> Render:
    return lambda graph, laid, design: function(graph).encode()


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "svg", "image/svg+xml", "diagram.svg", lambda g, laid, d: svg(g, laid).encode(), True
        ),
        Format("png", "image/png", "diagram.png", lambda g, laid, d: png(svg(g, laid)), True),
        Format("mermaid", "text/vnd.mermaid; charset=utf-8", "diagram.mmd", _text(flowchart)),
        Format(
            "architecture",
            "text/vnd.mermaid; charset=utf-8",
            "architecture.mmd",
            _text(architecture),
        ),
        Format("dot", "text/vnd.graphviz; charset=utf-8", "diagram.dot", _text(dot)),
        Format("d2", "text/plain; charset=utf-8", "diagram.d2", _text(d2)),
        Format(
            "drawio",
            "application/xml",
            "diagram.drawio",
            lambda g, laid, d: drawio(g, laid).encode(),
            True,
        ),
        Format(
            "json",
            "application/json",
            "graph.json",
            lambda g, laid, d: orjson.dumps(g.to_json(), option=orjson.OPT_INDENT_2),
        ),
        Format("markdown", "text/markdown; charset=utf-8", "design.md", lambda g, _, d: d.encode()),
    )
}


def available(name: str) -> bool:
    return name != "png" or png_renderer_available()


def export(graph: Graph, name: str, design: str, laid: Layout | None = None) -> bytes:
    """One format's bytes (``name`` is a key of ``FORMATS``)."""
    chosen = FORMATS[name]
    if chosen.needs_layout and laid is None:
        laid = layout(graph)
    return chosen.render(graph, laid, design)  # type: ignore[arg-type]


def export_all(graph: Graph, design: str) -> dict[str, bytes]:
    """Every available format, the layout computed once."""
    laid = layout(graph)
    return {name: export(graph, name, design, laid) for name in FORMATS if available(name)}


__all__ = ["FORMATS", "Format", "available", "export", "export_all", "flowchart", "svg"]
