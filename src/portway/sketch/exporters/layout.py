"""A layered (Sugiyama) layout of a graph's components, computed with ``grandalf``.

Boxes are sized from their text; each connected component is laid out on its own and
the components are placed side by side. Edges are polylines through the layout's
dummy points, clipped to the boxes they join. Pure Python: the callers run it off the
event loop (``render``).
"""

from __future__ import annotations

from dataclasses import dataclass

from grandalf.graphs import Edge as LayoutEdge
from grandalf.graphs import Vertex, graph_core
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
    order = {node.id: index for index, node in enumerate(components)}
    boxes: dict[str, Box] = {}
    offset = MARGIN
    height = 0.0
    for part in _components(components, vertices, [link for _, link in drawn]):
        sugiyama = SugiyamaLayout(part)
        sugiyama.xspace, sugiyama.yspace = 40, 70
        roots, back = _acyclic(part, order)
        sugiyama.init_all(roots=roots, inverted_edges=back)
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


def _components(
    nodes: tuple[Node, ...], vertices: dict[str, Vertex], links: list[LayoutEdge]
) -> list[graph_core]:
    """The connected components, each built in the graph's own node and edge order
    (grandalf's ``Graph`` collects them in sets: hash order, so not repeatable)."""
    parent = {node.id: node.id for node in nodes}

    def root(node_id: str) -> str:
        while parent[node_id] != node_id:
            parent[node_id] = parent[parent[node_id]]
            node_id = parent[node_id]
        return node_id

    for link in links:
        parent[root(link.v[0].data)] = root(link.v[1].data)
    members: dict[str, list[Vertex]] = {}
    for node in nodes:
        members.setdefault(root(node.id), []).append(vertices[node.id])
    edges: dict[str, list[LayoutEdge]] = {}
    for link in links:
        edges.setdefault(root(link.v[0].data), []).append(link)
    return [graph_core(group, edges.get(key, [])) for key, group in members.items()]


def _acyclic(part: graph_core, order: dict[str, int]) -> tuple[list[Vertex], list[LayoutEdge]]:
    """The roots and the edges to invert so the component is a DAG, chosen by a DFS in
    the graph's own node order (grandalf's own choice depends on hash order, so the same
    graph could be drawn differently twice)."""
    members = sorted(part.sV, key=lambda v: order[v.data])
    roots = [v for v in members if not v.e_in()] or members[:1]
    outgoing = {
        v: sorted(v.e_out(), key=lambda e: (order[e.v[1].data], order[e.v[0].data]))
        for v in members
    }
    state: dict[Vertex, int] = {}  # 1: on the DFS path, 2: done
    back: list[LayoutEdge] = []
    for start in [*roots, *members]:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(outgoing[start]))]
        while stack:
            vertex, edges = stack[-1]
            link = next(edges, None)
            if link is None:
                state[vertex] = 2
                stack.pop()
                continue
            target = link.v[1]
            if state.get(target) == 1:
                back.append(link)
            elif target not in state:
                state[target] = 1
                stack.append((target, iter(outgoing[target])))
    return roots, back


def _distance(a: Point, b: Point) -> float:
    return (a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2
