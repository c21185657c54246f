"""`responses: native`: `/v1/responses` forwarded as-is to an upstream with its own Responses
API, through the one door (keys, limits, routing, ledger), via the official SDK; bodies
and stream events checked against the spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from portway.config import ConfigError, load_settings
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import Fail, FakeOpenAI, ResponseReply
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.responses.support import check_stream, sse_events, types_of

MASTER = "sk-master-native"
PRICE = {"input": 1000.0, "output": 1000.0}  # $0.001 per token


@pytest.fixture(scope="module")
def door(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    upstream = fake_openai_server.base_url
    return start_portway(
        {
            "master_key": MASTER,
            "models": [
                fake_model("gpt-native", upstream, pricing=PRICE, responses="native"),
                fake_model("gpt-native-pair", upstream, pricing=PRICE, responses="native"),
                fake_model("gpt-native-pair", upstream, pricing=PRICE, responses="native"),
                fake_model("gpt-own", upstream, pricing=PRICE),
            ],
            "router": {"gpt-native-pair": {"retries": 1}},
        }
    )


def create_key(server: PortwayServer, **fields: Any) -> dict[str, Any]:
    with server.admin(MASTER) as http:
        response = http.post("/v1/admin/keys", json=fields)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def ledger(server: PortwayServer, key_id: str) -> list[dict[str, Any]]:
    with server.admin(MASTER) as http:
        response = http.get(
            "/v1/admin/usage",
            params={"group_by": "endpoint,model,status", "key": key_id},
        )
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def sdk(server: PortwayServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=key, max_retries=0)


def post(server: PortwayServer, body: dict[str, Any], key: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/responses",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=30,
    )


def test_a_response_is_forwarded_as_sent_and_answered_by_the_upstream(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door)
    response = sdk(door, key["key"]).responses.create(
        model="gpt-native",
        input=[{"role": "user", "content": "hello upstream"}],
        instructions="Be brief.",
        metadata={"case": "whole"},
        extra_body={"an_upstream_extension": {"kept": True}},
    )
    assert response.output_text == "native: hello upstream"
    assert response.model == "gpt-native"
    assert response.id.startswith("resp_fake")
    assert response.usage is not None and response.usage.total_tokens == 14
    [sent] = fake_openai.requests
    assert sent.path == "/v1/responses"
    # The client's body as sent, unknown fields included; only the model is mapped, and
    # without a client cap the one the budget hold assumed (the default 4096) is added.
    assert sent.body == {
        "max_output_tokens": 4096,
        "model": "upstream-gpt-native",
        "input": [{"role": "user", "content": "hello upstream"}],
        "instructions": "Be brief.",
        "metadata": {"case": "whole"},
        "an_upstream_extension": {"kept": True},
        "stream": False,
    }
    raw = post(door, {"model": "gpt-native", "input": "again"}, key["key"])
    assert raw.status_code == 200, raw.text
    assert_matches("Response", raw.json())
    assert raw.json()["output"][0]["content"][0]["text"] == "native: again"


def test_a_native_response_is_stored_upstream_and_portway_says_so(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door)
    created = post(door, {"model": "gpt-native", "input": "keep"}, key["key"]).json()
    for method, path in [
        ("GET", f"/responses/{created['id']}"),
        ("DELETE", f"/responses/{created['id']}"),
        ("GET", f"/responses/{created['id']}/input_items"),
    ]:
        missing = httpx.request(
            method,
            f"{door.base_url}{path}",
            headers={"authorization": f"Bearer {key['key']}"},
            timeout=30,
        )
        assert missing.status_code == 404, missing.text
        error = missing.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert "stored by that upstream" in error["message"]
    assert [sent.path for sent in fake_openai.requests] == ["/v1/responses"]


def test_a_native_response_leaves_a_ledger_row_with_its_usage(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door)
    sdk(door, key["key"]).responses.create(model="gpt-native", input="count me")
    [row] = ledger(door, key["id"])
    assert (row["endpoint"], row["model"], row["status"], row["requests"]) == (
        "responses",
        "gpt-native",
        200,
        1,
    )
    # The Response's usage: input 9 (2 of them cached), output 5.
    assert (row["prompt_tokens"], row["completion_tokens"]) == (9, 5)
    assert row["cost"] > 0


def test_a_streamed_native_response_is_relayed_event_by_event(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door)
    with httpx.stream(
        "POST",
        f"{door.base_url}/responses",
        json={"model": "gpt-native", "input": "stream this", "stream": True},
        headers={"authorization": f"Bearer {key['key']}"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        response.read()
    events = sse_events(response)
    check_stream(events)
    assert types_of(events)[0] == "response.created"
    assert types_of(events)[-1] == "response.completed"
    assert events[-1]["response"]["model"] == "gpt-native"
    assert "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta") == (
        "native: stream this"
    )
    assert fake_openai.requests[-1].body == {
        "model": "upstream-gpt-native",
        "input": "stream this",
        "stream": True,
        "max_output_tokens": 4096,
    }
    [row] = ledger(door, key["id"])
    assert (row["endpoint"], row["prompt_tokens"], row["completion_tokens"]) == (
        "responses",
        9,
        5,
    )

    # The SDK's stream helper reads it as OpenAI's own.
    with sdk(door, key["key"]).responses.stream(model="gpt-native", input="sdk") as stream:
        final = stream.get_final_response()
    assert final.output_text == "native: sdk"


def test_the_key_rpm_limit_applies_to_native_responses(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door, rpm=1)
    assert post(door, {"model": "gpt-native", "input": "a"}, key["key"]).status_code == 200
    limited = post(door, {"model": "gpt-native", "input": "b"}, key["key"])
    assert limited.status_code == 429, limited.text
    assert set(limited.json()["error"]) == {"message", "type", "param", "code"}
    assert "retry-after" in limited.headers
    assert len(fake_openai.requests) == 1
    statuses = sorted(row["status"] for row in ledger(door, key["id"]))
    assert statuses == [200, 429]


def test_the_budget_hold_and_spend_apply_to_native_responses(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    # $0.001 per token: 1000 output tokens may cost $1, over a $0.05 budget: refused.
    key = create_key(door, max_budget=0.05, budget_period="daily")
    body = {"model": "gpt-native", "input": "hi", "max_output_tokens": 1000}
    refused = post(door, body, key["key"])
    assert refused.status_code == 429, refused.text
    assert fake_openai.requests == []
    allowed = post(door, {**body, "max_output_tokens": 16}, key["key"])
    assert allowed.status_code == 200, allowed.text
    with door.admin(MASTER) as http:
        budget = http.get(f"/v1/admin/keys/{key['id']}").json()["budget"]
    [row] = [row for row in ledger(door, key["id"]) if row["status"] == 200]
    assert budget["reserved"] == 0
    assert budget["spend"] == pytest.approx(row["cost"]) and row["cost"] > 0


def test_a_failing_native_deployment_is_retried_on_another(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door)
    fake_openai.script_responses(Fail(500))
    response = sdk(door, key["key"]).responses.create(model="gpt-native-pair", input="retry")
    assert response.output_text == "native: retry"
    assert len(fake_openai.requests) == 2


def test_a_stream_cut_by_the_upstream_ends_with_an_error_event(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door)
    fake_openai.script_responses(ResponseReply(drop_after=5))
    response = post(door, {"model": "gpt-native", "input": "cut", "stream": True}, key["key"])
    assert response.status_code == 200
    events = sse_events(response)
    assert types_of(events)[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert types_of(events)[-1] == "error" and len(events) == 6
    check_stream(events)  # the error event is the spec's, numbered after the last one
    [row] = ledger(door, key["id"])
    assert row["endpoint"] == "responses" and row["status"] >= 500


def test_a_stream_that_fails_before_its_first_event_is_retried(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door)
    fake_openai.script_responses(Fail(503))
    body = {"model": "gpt-native-pair", "input": "again", "stream": True}
    response = post(door, body, key["key"])
    assert response.status_code == 200, response.text
    events = sse_events(response)
    check_stream(events)
    assert events[-1]["type"] == "response.completed"
    assert len(fake_openai.requests) == 2


def test_bad_input_is_refused_before_the_upstream(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door)
    bad = post(door, {"model": "gpt-native", "input": "x", "temperature": "hot"}, key["key"])
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "temperature"
    assert fake_openai.requests == []


def test_other_models_keep_portways_own_implementation(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door)
    response = sdk(door, key["key"]).responses.create(model="gpt-own", input="mine")
    assert response.id.startswith("resp_") and not response.id.startswith("resp_fake")
    assert [sent.path for sent in fake_openai.requests] == ["/v1/chat/completions"]


def test_guardrails_refuse_a_native_response_they_cannot_check(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = create_key(door, metadata={"guardrails": [{"name": "pii", "mode": "redact"}]})
    for stream in (False, True):
        body = {"model": "gpt-native", "input": "mail alice@example.org", "stream": stream}
        refused = post(door, body, key["key"])
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert (error["code"], error["param"]) == ("guardrails_unsupported", "model")
        assert "pii" in error["message"]
    assert fake_openai.requests == []


def test_native_on_a_provider_without_a_responses_api_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "portway.yaml"
    config.write_text("models:\n  - name: claude\n    provider: anthropic\n    responses: native\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert "models[0]" in str(caught.value) and "responses: native" in str(caught.value)
