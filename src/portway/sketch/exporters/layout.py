"""A layered (Sugiyama) layout of a graph's components, computed with ``grandalf``.

Boxes are sized from their text; each connected component is laid out on its own and
the components are placed side by side. Edges are polylines through the layout's
dummy points, clipped to the boxes they join. Pure Python: the callers run it off the
event loop (``render``).
"""

from __future__ import annotations

from dataclasses import dataclass

from grandalf.graphs import Edge as LayoutEdge
from grandalf.graphs import Graph as LayoutGraph
from grandalf.graphs import Vertex
from grandalf.layouts import SugiyamaLayout

from portway.sketch.graph import Edge, Graph, Node

CHAR_WIDTH = 7.2  # average width of a 12px sans-serif character
NODE_HEIGHT = 54.0
MIN_WIDTH = 110.0
MARGIN = 40.0
GAP = 60.0
LABEL_ROOM = 70.0
Point = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Box:
    x: float  # centre
    y: float
    w: float
    h: float

    @property
    def left(self) -> float:
        return self.x - self.w / 2

    @property
    def top(self) -> float:
        return self.y - self.h / 2


@dataclass(frozen=True, slots=True)
class Layout:
    boxes: dict[str, Box]
    edges: list[tuple[Edge, list[Point]]]
    width: float
    height: float


class _View:
    """What grandalf reads and writes on a vertex: its size and, once laid out, ``xy``."""

    def __init__(self, w: float, h: float) -> None:
        self.w = w
        self.h = h
        self.xy: Point = (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.points: list[Point] = []

    def setpath(self, points: list[Point]) -> None:
        self.points = [(float(x), float(y)) for x, y in points]


def box_width(node: Node) -> float:
    text = max(len(node.label), len(node.technology), len(node.kind) + 4)
    return max(MIN_WIDTH, text * CHAR_WIDTH + 24)


def _clip(box: Box, inside: Point, outside: Point) -> Point:
    """Where the segment from ``inside`` (the box's centre) to ``outside`` leaves the box."""
    dx, dy = outside[0] - inside[0], outside[1] - inside[1]
    if dx == 0 and dy == 0:
        return inside
    scale = min(
        (box.w / 2) / abs(dx) if dx else float("inf"),
        (box.h / 2) / abs(dy) if dy else float("inf"),
    )
    return (inside[0] + dx * scale, inside[1] + dy * scale)


def layout(graph: Graph) -> Layout:
    components = graph.components
    vertices = {node.id: Vertex(node.id) for node in components}
    for node in components:
        vertices[node.id].view = _View(box_width(node), NODE_HEIGHT)
    drawn: list[tuple[Edge, LayoutEdge]] = []
    for edge in graph.edges:
        if edge.source in vertices and edge.target in vertices and edge.source != edge.target:
            link = LayoutEdge(vertices[edge.source], vertices[edge.target])
            link.view = _EdgeView()
            drawn.append((edge, link))
    laid = LayoutGraph(list(vertices.values()), [link for _, link in drawn])
    boxes: dict[str, Box] = {}
    offset = MARGIN
    height = 0.0
    for part in laid.C:
        sugiyama = SugiyamaLayout(part)
        sugiyama.xspace, sugiyama.yspace = 40, 70
        sugiyama.init_all()
        sugiyama.draw()
        members = list(part.sV)
        left = min(v.view.xy[0] - v.view.w / 2 for v in members)
        top = min(v.view.xy[1] - v.view.h / 2 for v in members)
        right = max(v.view.xy[0] + v.view.w / 2 for v in members)
        bottom = max(v.view.xy[1] + v.view.h / 2 for v in members)
        for _, link in drawn:
            if link.v[0] in members and link.view.points:
                # Routed edges may pass beside the boxes; their labels need room too.
                right = max(right, *(x + LABEL_ROOM for x, _ in link.view.points))
        for vertex in members:
            x, y = vertex.view.xy
            boxes[vertex.data] = Box(
                x - left + offset, y - top + MARGIN + 30, vertex.view.w, vertex.view.h
            )
        for _, link in drawn:
            if link.v[0] in members and link.view.points:
                link.view.points = [
                    (x - left + offset, y - top + MARGIN + 30) for x, y in link.view.points
                ]
        offset += right - left + GAP
        height = max(height, bottom - top)
    routed: list[tuple[Edge, list[Point]]] = []
    for edge, link in drawn:
        source, target = boxes[edge.source], boxes[edge.target]
        points = list(link.view.points) or [(source.x, source.y), (target.x, target.y)]
        start, end = (source.x, source.y), (target.x, target.y)
        if _distance(points[0], start) > _distance(points[-1], start):
            points.reverse()  # an edge grandalf inverted to break a cycle
        points[0], points[-1] = start, end
        points[0] = _clip(source, start, points[1])
        points[-1] = _clip(target, end, points[-2])
        routed.append((edge, points))
    width = max(offset - GAP + MARGIN, 320.0)
    return Layout(boxes, routed, width, height + 2 * MARGIN + 30)


def _distance(a: Point, b: Point) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
