"""Every exporter's output, checked by a parser of its format where one runs here."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import orjson
import pydot
import pytest

from portway.sketch.design import Narrative, design_markdown, parse_narrative
from portway.sketch.exporters import FORMATS, available, export, export_all
from portway.sketch.exporters.mermaid import architecture, flowchart, sequence
from portway.sketch.graph import Graph, parse_graph
from tests.conftest import SERVICES_REQUIRED
from tests.sketch.mermaid import check_flowchart, mermaid_parse, parser_missing
from tests.sketch.support import large, narrative, node, shortener

SVG = "{http://www.w3.org/2000/svg}"


def graphs() -> dict[str, Graph]:
    awkward = shortener()
    awkward["title"] = 'Links & "quotes" <ok>'
    awkward["nodes"].append(node("end", "service", 'The "end" | <node> & more', "app"))
    awkward["edges"].append(
        {"from": "api", "to": "end", "protocol": "a|b", "mode": "sync", "data": 'x "y"'}
    )
    return {
        "shortener": parse_graph(shortener()).graph,
        "large": parse_graph(large(30)).graph,
        "awkward": parse_graph(awkward).graph,
    }


@pytest.fixture(scope="module", params=["shortener", "large", "awkward"])
def graph(request: pytest.FixtureRequest) -> Graph:
    return graphs()[request.param]


def test_flowchart_is_structurally_sound(graph: Graph) -> None:
    found = check_flowchart(flowchart(graph))
    assert len(found["nodes"]) == len(graph.components)
    assert len(found["edges"]) == len(graph.edges)


def test_mermaid_parses_every_diagram_with_mermaids_own_parser() -> None:
    reason = parser_missing()
    if reason is not None:
        if SERVICES_REQUIRED:
            pytest.fail(f"{reason} (PORTWAY_TEST_SERVICES=required)")
        pytest.skip(reason)
    texts = {}
    for name, graph in graphs().items():
        texts[f"{name}-flowchart"] = flowchart(graph)
        texts[f"{name}-architecture"] = architecture(graph)
        texts[f"{name}-sequence"] = sequence(graph)
    texts["broken"] = "flowchart TB\n    a --> b(\n"
    results = mermaid_parse(texts)
    assert results.pop("broken")["ok"] is False  # the parser does reject bad input
    for name, result in results.items():
        assert result["ok"], (name, result, texts[name])
    kinds = {name.rsplit("-", 1)[1]: r["type"] for name, r in results.items()}
    assert kinds == {
        "flowchart": "flowchart-v2",
        "architecture": "architecture",
        "sequence": "sequence",
    }


def test_architecture_beta_declares_every_service_and_group(graph: Graph) -> None:
    lines = architecture(graph).splitlines()
    assert lines[0] == "architecture-beta"
    services = [line for line in lines if line.strip().startswith("service ")]
    groups = [line for line in lines if line.strip().startswith("group ")]
    assert len(services) == len(graph.components)
    assert len(groups) == len([g for g in graph.groups() if g])
    assert sum("-->" in line for line in lines) == len(graph.edges)


def test_dot_parses_with_pydot(graph: Graph) -> None:
    parsed = pydot.graph_from_dot_data(export(graph, "dot", "").decode())
    assert parsed is not None and len(parsed) == 1
    dot = parsed[0]
    names = {
        n.get_name().strip('"') for sub in [dot, *dot.get_subgraphs()] for n in sub.get_nodes()
    }
    assert {n.id for n in graph.components} <= names
    assert len(dot.get_edges()) == len(graph.edges)
    labels = {
        n.get_name().strip('"'): n.get_label()
        for s in [dot, *dot.get_subgraphs()]
        for n in s.get_nodes()
    }
    for component in graph.components:
        assert labels[component.id] is not None


def test_d2_names_every_node_and_connection(graph: Graph) -> None:
    text = export(graph, "d2", "").decode()
    assert text.count("{") == text.count("}")
    for component in graph.components:
        assert re.search(rf"^\s*{re.escape(component.id)}_?: \"", text, re.M), component.id
    assert sum(" -> " in line for line in text.splitlines()) == len(graph.edges)


def test_svg_is_well_formed_and_shows_every_label(graph: Graph) -> None:
    root = ET.fromstring(export(graph, "svg", ""))
    assert root.tag == f"{SVG}svg"
    groups = root.findall(f".//{SVG}g[@class='node']")
    assert {g.get("data-node-id") for g in groups} == {n.id for n in graph.components}
    texts = {t.text for t in root.iter(f"{SVG}text")}
    for component in graph.components:
        assert component.label in texts
    assert len(root.findall(f".//{SVG}g[@class='edge']")) == len(graph.edges)


def test_drawio_xml_has_a_cell_per_component_and_connection(graph: Graph) -> None:
    root = ET.fromstring(export(graph, "drawio", ""))
    assert root.tag == "mxfile"
    cells = root.findall("./diagram/mxGraphModel/root/mxCell")
    ids = [cell.get("id") for cell in cells]
    assert len(ids) == len(set(ids))
    vertices = {
        c.get("id"): c for c in cells if c.get("vertex") == "1" and c.get("id", "").startswith("n_")
    }
    assert set(vertices) == {f"n_{n.id}" for n in graph.components}
    for component in graph.components:
        assert vertices[f"n_{component.id}"].get("value", "").startswith(component.label)
        geometry = vertices[f"n_{component.id}"].find("mxGeometry")
        assert geometry is not None and float(geometry.get("width", 0)) > 0
    edges = [c for c in cells if c.get("edge") == "1"]
    assert len(edges) == len(graph.edges)
    assert all(e.get("source") in vertices and e.get("target") in vertices for e in edges)
    assert all(c.get("parent") in ids for c in cells if c.get("parent"))


def test_png_is_rendered_when_a_renderer_is_installed(graph: Graph) -> None:
    if not available("png"):
        pytest.skip("no SVG renderer installed (resvg-py)")
    content = export(graph, "png", "")
    assert content.startswith(b"\x89PNG\r\n\x1a\n")
    width = int.from_bytes(content[16:20], "big")
    assert width > 200


def test_exports_are_deterministic_and_cover_every_format() -> None:
    graph = graphs()["large"]
    first = export_all(graph, "# doc\n")
    assert first == export_all(graph, "# doc\n")
    assert set(first) == {name for name in FORMATS if available(name)}
    assert orjson.loads(first["json"]) == large(30)
    assert first["markdown"] == b"# doc\n"


def test_the_design_document_has_every_section() -> None:
    graph = graphs()["shortener"]
    text = design_markdown(
        graph, parse_narrative(narrative()), description="a URL shortener", model="m", version=2
    )
    for heading in (
        "## Overview",
        "## Architecture diagram",
        "## Components",
        "## Data flow",
        "## Main flow (sequence)",
        "## Failure modes and mitigations",
        "## Scaling and capacity",
        "## Security and privacy",
        "## Open questions",
    ):
        assert heading in text
    assert text.count("```mermaid") == 2
    assert "Redis is down." in text and "Read PostgreSQL." in text  # the model's own
    assert "circuit breaker" in text  # a default for the components it did not cover
    for component in graph.components:
        assert f"(`{component.id}`)" in text
    assert "How long are clicks kept?" in text


def test_an_empty_narrative_still_gives_a_complete_document() -> None:
    graph = graphs()["shortener"]
    text = design_markdown(graph, Narrative(), description="a URL shortener", model="m", version=1)
    assert "### Main request path" in text
    assert "1. Browser → CDN" in text
    assert "- None recorded." in text
