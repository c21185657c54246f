"""Versions: keeping node ids stable across a revision, and the diff between two graphs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from portway.sketch.graph import Edge, Graph, Node


def stabilize(previous: Graph, revised: Graph) -> Graph:
    """``revised`` with the ids of ``previous`` wherever the model renamed a node it kept.

    A revised node whose id is new but whose label (case-insensitive) or id-less identity
    matches a node of ``previous`` that is gone takes that node's id back, and edges follow.
    """
    new_ids = {node.id for node in revised.nodes}
    vanished = {
        node.label.strip().lower(): node.id for node in previous.nodes if node.id not in new_ids
    }
    renames: dict[str, str] = {}
    for node in revised.nodes:
        if previous.node(node.id) is not None:
            continue
        old = vanished.pop(node.label.strip().lower(), None)
        if old is not None:
            renames[node.id] = old
    if not renames:
        return revised
    nodes = tuple(replace(node, id=renames.get(node.id, node.id)) for node in revised.nodes)
    edges = tuple(
        replace(
            edge,
            source=renames.get(edge.source, edge.source),
            target=renames.get(edge.target, edge.target),
        )
        for edge in revised.edges
    )
    return Graph(title=revised.title, nodes=nodes, edges=edges)


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: {"from": before.get(name), "to": value}
        for name, value in after.items()
        if before.get(name) != value
    }


def _node_json(node: Node) -> dict[str, Any]:
    return node.to_json()


def _edge_json(edge: Edge) -> dict[str, Any]:
    return edge.to_json()


def diff(before: Graph, after: Graph) -> dict[str, Any]:
    """What changed from ``before`` to ``after``: nodes by id, edges by (from, to)."""
    old_nodes = {node.id: node for node in before.nodes}
    new_nodes = {node.id: node for node in after.nodes}
    old_edges = {edge.key: edge for edge in before.edges}
    new_edges = {edge.key: edge for edge in after.edges}
    changed_nodes = []
    for node_id, node in new_nodes.items():
        old = old_nodes.get(node_id)
        if old is not None and old != node:
            changes = _changes(_node_json(old), _node_json(node))
            changed_nodes.append({"id": node_id, "changes": changes})
    changed_edges = []
    for key, edge in new_edges.items():
        old_edge = old_edges.get(key)
        if old_edge is not None and old_edge != edge:
            changes = _changes(_edge_json(old_edge), _edge_json(edge))
            changed_edges.append({"from": key[0], "to": key[1], "changes": changes})
    return {
        "title": _changes({"title": before.title}, {"title": after.title}).get("title"),
        "nodes": {
            "added": [_node_json(new_nodes[i]) for i in new_nodes if i not in old_nodes],
            "removed": [_node_json(old_nodes[i]) for i in old_nodes if i not in new_nodes],
            "changed": changed_nodes,
        },
        "edges": {
            "added": [_edge_json(new_edges[k]) for k in new_edges if k not in old_edges],
            "removed": [_edge_json(old_edges[k]) for k in old_edges if k not in new_edges],
            "changed": changed_edges,
        },
    }
