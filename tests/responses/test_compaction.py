"""Compaction in the Responses API: ``/v1/responses/compact`` answers a sealed
``compaction`` item that a client sends back (``store: false``, nothing stored) and the
model then sees the summary; ``context_management`` compacts a context past its threshold
and the chain carries the item; an altered item, or another tenant's, is a clear 400."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from portway.context.compactor import SUMMARY_HEADER
from tests.assistants.support import TEAM_A_KEY, TEAM_B_KEY, use_test_tenants
from tests.conftest import PortwayFactory, fake_model
from tests.context.summaries import Summaries, model_calls, summarizer_calls
from tests.context.test_stage import upstream_tokens
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer
from tests.openapi import assert_matches
from tests.responses.support import call

MODEL = "compacting"
THRESHOLD = 1000
FAKE_PROMPT_TOKENS = 7  # what the fake upstream reports for every call


@pytest.fixture(scope="module")
def door(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    server = start_portway(
        {
            "models": [
                fake_model(
                    MODEL,
                    fake_openai_server.base_url,
                    context_window=8000,
                    context={"summary_max_tokens": 64},
                )
            ]
        }
    )
    use_test_tenants(server)
    return server


@pytest.fixture
def upstream(fake_openai: FakeOpenAI) -> Summaries:
    summaries = Summaries()
    fake_openai.default = summaries
    return summaries


def items(turns: int = 40, place: str = "harbour") -> list[dict[str, Any]]:
    """A conversation about ``place`` (each test its own: summaries are stored by prefix)."""
    out: list[dict[str, Any]] = []
    for turn in range(turns):
        out.append(
            {"role": "user", "content": f"Question {turn}: what about the {place} on day {turn}?"}
        )
        out.append(
            {
                "type": "message",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": f"Answer {turn}: boats, gulls, rain {turn}."}
                ],
            }
        )
    out.append({"role": "user", "content": f"And the {place} on the last day?"})
    return out


def compact(door: PortwayServer, key: str = TEAM_A_KEY, **body: Any) -> httpx.Response:
    return call(door, "POST", "/responses/compact", key, json={"model": MODEL, **body})


def create(door: PortwayServer, key: str = TEAM_A_KEY, **body: Any) -> httpx.Response:
    return call(door, "POST", "/responses", key, json={"model": MODEL, **body})


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("content")) for m in messages)


def test_compact_answers_a_sealed_compaction_item(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    response = compact(door, input=items())
    assert response.status_code == 200, response.text
    body = response.json()
    assert_matches("CompactResource", body)
    assert body["object"] == "response.compaction"
    [item] = body["output"]
    assert item["type"] == "compaction" and item["id"].startswith("cmp_")
    calls = summarizer_calls(fake_openai)
    assert calls and model_calls(fake_openai) == []
    # opaque: neither the summary nor the turns it keeps can be read from it
    assert upstream.written[-1] not in item["encrypted_content"]
    assert "harbour" not in item["encrypted_content"]
    assert body["usage"]["input_tokens"] == FAKE_PROMPT_TOKENS * len(calls)


def test_a_compaction_item_round_trips_statelessly(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    [item] = compact(door, input=items(place="marina")).json()["output"]
    summary = upstream.written[-1]
    calls = len(summarizer_calls(fake_openai))
    response = create(
        door,
        input=[item, {"role": "user", "content": "What did we say about gulls?"}],
        store=False,
    )
    assert response.status_code == 200, response.text
    assert len(summarizer_calls(fake_openai)) == calls  # read back, not summarized again
    sent = model_calls(fake_openai)[-1].body["messages"]
    assert sent[0] == {"role": "system", "content": f"{SUMMARY_HEADER}\n{summary}"}
    # then the newest turn the item kept whole, then the new input
    assert sent[1] == {"role": "user", "content": "And the marina on the last day?"}
    assert sent[-1] == {"role": "user", "content": "What did we say about gulls?"}
    assert "Question 0:" not in texts(sent)
    # nothing was stored
    assert call(door, "GET", f"/responses/{response.json()['id']}").status_code == 404


def test_a_tampered_item_is_a_clear_400(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    [item] = compact(door, input=items(30, "quay")).json()["output"]
    content = item["encrypted_content"]
    middle = len(content) // 2
    flipped = "A" if content[middle] != "A" else "B"
    tampered = {**item, "encrypted_content": content[:middle] + flipped + content[middle + 1 :]}
    fake_openai.requests.clear()
    response = create(door, input=[tampered, {"role": "user", "content": "Go on."}], store=False)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_encrypted_content"
    assert error["param"] == "input[0]"
    assert error["type"] == "invalid_request_error"
    assert fake_openai.requests == []
    garbage = {"type": "compaction", "encrypted_content": "not-a-sealed-item"}
    response = create(door, input=[garbage, {"role": "user", "content": "Go on."}])
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_encrypted_content"


def test_another_tenants_item_is_refused(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    [item] = compact(door, TEAM_A_KEY, input=items(30, "pier")).json()["output"]
    response = create(door, TEAM_B_KEY, input=[item, {"role": "user", "content": "Hi."}])
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_encrypted_content"


def test_context_management_compacts_past_the_threshold_and_the_chain_carries_it(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    management = [{"type": "compaction", "compact_threshold": THRESHOLD}]
    conversation = items(place="dock")
    response = create(door, input=conversation, context_management=management)
    assert response.status_code == 200, response.text
    first = response.json()
    assert [item["type"] for item in first["output"]] == ["compaction", "message"]
    calls = len(summarizer_calls(fake_openai))
    assert calls >= 1
    sent = model_calls(fake_openai)[-1].body["messages"]
    summary = upstream.written[-1]
    assert sent[0] == {"role": "system", "content": f"{SUMMARY_HEADER}\n{summary}"}
    assert sent[-1] == {"role": "user", "content": "And the dock on the last day?"}
    assert upstream_tokens(sent, f"upstream-{MODEL}") <= THRESHOLD

    follow = create(
        door,
        previous_response_id=first["id"],
        input="And the day after?",
        context_management=management,
    )
    assert follow.status_code == 200, follow.text
    assert len(summarizer_calls(fake_openai)) == calls  # the item stands for the history
    assert [item["type"] for item in follow.json()["output"]] == ["message"]
    chained = model_calls(fake_openai)[-1].body["messages"]
    assert chained[0] == sent[0]
    assert chained[-1] == {"role": "user", "content": "And the day after?"}
    assert "Question 0:" not in texts(chained)


def test_under_the_threshold_nothing_is_compacted(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    management = [{"type": "compaction", "compact_threshold": THRESHOLD}]
    response = create(door, input=items(3, "bay"), context_management=management)
    assert response.status_code == 200, response.text
    assert [item["type"] for item in response.json()["output"]] == ["message"]
    assert summarizer_calls(fake_openai) == []


def test_an_unknown_context_management_type_is_a_400(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    response = create(door, input="Hi", context_management=[{"type": "forget"}])
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "context_management[0].type"
    assert fake_openai.requests == []


def test_a_whole_response_says_what_truncation_did(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    long = create(door, input=items(400, "pier"), truncation="auto")
    assert long.status_code == 200, long.text
    assert long.headers["x-portway-context"] == "truncated"
    before, after = map(int, long.headers["x-portway-context-tokens"].split("->"))
    assert after < before and after <= 8000
    assert (
        upstream_tokens(model_calls(fake_openai)[-1].body["messages"], f"upstream-{MODEL}") <= 8000
    )
    short = create(door, input="Just one question.", truncation="auto")
    assert short.status_code == 200, short.text
    assert short.headers["x-portway-context"] == "none"


def test_a_replica_with_the_same_server_key_opens_the_item_and_another_key_does_not(
    start_portway: PortwayFactory, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    shared = secrets.token_hex(32)
    model = fake_model(
        MODEL, fake_openai.base_url, context_window=8000, context={"summary_max_tokens": 64}
    )
    doors = [
        start_portway({"server_key": key, "models": [model]})
        for key in (shared, shared, secrets.token_hex(32))
    ]
    for door in doors:
        use_test_tenants(door)
    [item] = compact(doors[0], input=items(place="quay")).json()["output"]
    follow_up = [item, {"role": "user", "content": "And the gulls?"}]
    assert create(doors[1], input=follow_up, store=False).status_code == 200
    refused = create(doors[2], input=follow_up, store=False)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_encrypted_content"
