"""Virtual models: rules pick the group per request; the choice is reported back."""

from __future__ import annotations

import pytest

from tests.fakes.openai_upstream import Fail, Reply
from tests.openapi import assert_matches
from tests.routing.conftest import deployment

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": {"type": "object"}},
}


@pytest.fixture
def gateway(gateway_for, upstreams):
    small, large, tooling = upstreams
    return gateway_for(
        [
            deployment("small", small),
            deployment("large", large, context_window=128000),
            deployment("tooling", tooling),
        ],
        {
            "auto": {
                "rules": [
                    {"when": {"prompt_tokens_over": 500}, "use": "large"},
                    {"when": {"has_tools": True}, "use": "tooling"},
                    {"when": {"has_json_schema": True}, "use": "tooling"},
                    {"when": {"matches": r"(?i)\bprove\b"}, "use": "large"},
                    {"when": {"keywords": ["SQL", "c++"]}, "use": "tooling"},
                    {"when": {"tier": ["premium", "gold"]}, "use": "large"},
                    {"use": "small"},
                ],
                "trust_client_tier": True,  # the header and metadata.tier cases below
            }
        },
    )


@pytest.mark.parametrize(
    ("text", "extra", "headers", "expected"),
    [
        ("hello there", {}, {}, "small"),
        ("x" * 4000, {}, {}, "large"),
        ("what's the weather", {"tools": TOOLS}, {}, "tooling"),
        ("what's the weather", {"tools": TOOLS, "tool_choice": "none"}, {}, "small"),
        ("give me json", {"response_format": SCHEMA}, {}, "tooling"),
        ("Please PROVE that sqrt(2) is irrational", {}, {}, "large"),
        ("improve my essay", {}, {}, "small"),  # `prove` must be a whole word
        ("write a sql query", {}, {}, "tooling"),
        ("a C++ question", {}, {}, "tooling"),
        ("hello", {}, {"x-portway-tier": "premium"}, "large"),
        ("hello", {"metadata": {"tier": "gold"}}, {}, "large"),
        ("hello", {"metadata": {"tier": "free"}}, {}, "small"),
    ],
)
def test_rules_pick_the_group(gateway, upstreams, text, extra, headers, expected) -> None:
    response = gateway.chat("auto", text, headers=headers, **extra)
    assert response.status_code == 200, response.text
    assert response.json()["model"] == expected
    assert response.headers["x-portway-route"] == expected
    served = {"small": upstreams[0], "large": upstreams[1], "tooling": upstreams[2]}[expected]
    assert len(served.requests) == 1
    assert served.requests[0].body["model"] == f"upstream-{expected}"


def test_virtual_models_are_listed(gateway) -> None:
    listing = gateway.http.get("/v1/models").json()
    assert_matches("ListModelsResponse", listing)
    assert [m["id"] for m in listing["data"]] == ["small", "large", "tooling", "auto"]
    card = gateway.http.get("/v1/models/auto").json()
    assert card["owned_by"] == "portway"


def test_streamed_virtual_model_reports_the_route(gateway, upstreams) -> None:
    response, events = gateway.stream_events("auto", "prove it")
    assert response.headers["x-portway-route"] == "large"
    assert '"model":"large"' in events[0]


@pytest.fixture
def classified(gateway_for, upstreams):
    judge, large, small = upstreams
    return gateway_for(
        [deployment("judge", judge), deployment("large", large), deployment("small", small)],
        {
            "smart": {
                "classifier": {"model": "judge", "timeout": "2s"},
                "rules": [
                    {"when": {"classified_as": "complex"}, "use": "large"},
                    {"use": "small"},
                ],
            },
            "judge": {"retries": 0},
        },
    )


@pytest.mark.parametrize(
    ("verdict", "expected"),
    [
        (Reply(content="complex"), "large"),
        (Reply(content="Simple."), "small"),
        (Reply(content="no idea"), "small"),
        (Fail(500), "small"),
    ],
)
def test_classifier_decides(classified, upstreams, verdict, expected) -> None:
    upstreams[0].script(verdict)
    response = classified.chat("smart", "Derive the closed form of this recurrence")
    assert response.status_code == 200
    assert response.json()["model"] == expected
    question = upstreams[0].requests[0].body
    assert question["messages"][0]["role"] == "system"
    assert question["messages"][1]["content"] == "Derive the closed form of this recurrence"
    assert question["max_tokens"] == 4
