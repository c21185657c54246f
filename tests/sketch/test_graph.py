"""The typed graph, its validation and tidying, stable ids and diffs (no server)."""

from __future__ import annotations

import copy

import jsonschema

from portway.sketch.diff import diff, stabilize
from portway.sketch.graph import KINDS, graph_schema, parse_graph
from portway.sketch.validate import problems, tidy
from tests.sketch.support import edge, large, node, shortener, with_dangling_edge


def test_a_valid_graph_round_trips_and_matches_its_own_schema() -> None:
    data = shortener()
    jsonschema.validate(data, graph_schema())
    parsed = parse_graph(data)
    assert parsed.issues == []
    assert parsed.graph.to_json() == data
    assert problems(parsed.graph) == []


def test_the_schema_fixes_the_kind_vocabulary_and_the_sizes() -> None:
    schema = graph_schema(max_nodes=5, max_edges=7)
    assert schema["properties"]["nodes"]["items"]["properties"]["kind"]["enum"] == list(KINDS)
    assert schema["properties"]["nodes"]["maxItems"] == 5
    assert schema["properties"]["edges"]["maxItems"] == 7
    too_many = shortener()  # 8 nodes
    assert not jsonschema.Draft202012Validator(schema).is_valid(too_many)


def test_each_kind_of_problem_is_found() -> None:
    data = with_dangling_edge(shortener())
    data["nodes"].append(copy.deepcopy(data["nodes"][0]))  # duplicate "browser"
    data["nodes"].append(node("lonely", "service", "Lonely"))
    data["edges"].append(edge("db", "db", "SQL"))
    found = {(p.code, p.ref) for p in problems(parse_graph(data).graph)}
    assert ("dangling_edge", "api->ghost") in found
    assert ("duplicate_id", "browser") in found
    assert ("orphan", "lonely") in found
    assert ("self_loop", "db->db") in found


def test_externals_may_stand_alone_but_others_may_not() -> None:
    data = shortener()
    data["nodes"].append(node("stripe", "external", "Stripe", external=True))
    assert problems(parse_graph(data).graph) == []


def test_lenient_parsing_reports_what_it_could_not_read() -> None:
    parsed = parse_graph(
        {
            "nodes": [
                {"id": "Web App!", "kind": "Load Balancer", "label": "Web"},
                {"id": "x", "kind": "spaceship", "label": "X"},
                "not a node",
            ],
            "edges": [{"from": "web_app", "to": "x"}, {"to": "x"}],
        }
    )
    graph = parsed.graph
    assert [n.id for n in graph.nodes] == ["web_app", "x"]
    assert graph.nodes[0].kind == "load_balancer"
    assert graph.nodes[1].kind == "service"
    assert [issue.where for issue in parsed.issues] == ["nodes[1]", "nodes[2]", "edges[1]"]
    assert problems(graph, parsed.issues)[0].code == "unreadable"


def test_tidy_drops_only_what_cannot_be_drawn() -> None:
    data = with_dangling_edge(shortener())
    data["edges"].append(edge("api", "db", "SQL"))  # a repeated pair
    tidied = tidy(parse_graph(data).graph)
    assert [p.code for p in problems(tidied)] == []
    assert len(tidied.edges) == len(shortener()["edges"])


def test_stabilize_gives_renamed_nodes_their_old_ids_back() -> None:
    before = parse_graph(shortener()).graph
    renamed = shortener()
    for item in renamed["nodes"]:
        if item["id"] == "cache":
            item["id"] = "redis_cache"
    for item in renamed["edges"]:
        if item["to"] == "cache":
            item["to"] = "redis_cache"
    after = stabilize(before, parse_graph(renamed).graph)
    assert after == before


def test_diff_lists_added_removed_and_changed_parts() -> None:
    before = parse_graph(shortener()).graph
    changed = shortener()
    changed["nodes"] = [n for n in changed["nodes"] if n["id"] != "cdn"]
    changed["edges"] = [e for e in changed["edges"] if "cdn" not in (e["from"], e["to"])]
    changed["edges"].append(edge("browser", "lb"))
    changed["nodes"].append(node("search", "search", "Search", "data", technology="OpenSearch"))
    changed["edges"].append(edge("api", "search", "HTTP"))
    for item in changed["nodes"]:
        if item["id"] == "db":
            item["technology"] = "CockroachDB"
    result = diff(before, parse_graph(changed).graph)
    assert [n["id"] for n in result["nodes"]["added"]] == ["search"]
    assert [n["id"] for n in result["nodes"]["removed"]] == ["cdn"]
    assert result["nodes"]["changed"] == [
        {"id": "db", "changes": {"technology": {"from": "PostgreSQL", "to": "CockroachDB"}}}
    ]
    assert {(e["from"], e["to"]) for e in result["edges"]["added"]} == {
        ("browser", "lb"),
        ("api", "search"),
    }
    assert {(e["from"], e["to"]) for e in result["edges"]["removed"]} == {
        ("browser", "cdn"),
        ("cdn", "lb"),
    }
    assert result["title"] is None


def test_the_large_fixture_is_valid() -> None:
    graph = parse_graph(large(30)).graph
    assert len(graph.components) == 30
    assert problems(graph) == []
