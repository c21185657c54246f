"""``summarize`` and ``retrieve`` through HTTP: what reaches the fake upstream is the
system prompt, one summary and the newest turns (plus, for ``retrieve``, the older turns
the new one is about); a stable prefix is summarized once, later turns fold only what is
new into the previous summary; the summarizer is billed to the caller and its cost is on
the caller's ledger row."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from portway.context.compactor import SUMMARY_HEADER
from tests.assistants.support import wait_for
from tests.conftest import PortwayFactory, fake_model
from tests.context.summaries import Summaries, model_calls, summarizer_calls
from tests.context.test_stage import SYSTEM, conversation, upstream_tokens
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer
from tests.responses.support import stored_rows

MASTER = "sk-master-summaries"
WINDOW = 400
RESERVE = 50
BUDGET = WINDOW - RESERVE
SUMMARY_TOKENS = 48
PRICING = {"input": 1.0, "output": 2.0}


@pytest.fixture(scope="module")
def door(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    base = fake_openai_server.base_url
    context = {"reserve_output_tokens": RESERVE, "summary_max_tokens": SUMMARY_TOKENS}
    return start_portway(
        {
            "master_key": MASTER,
            "models": [
                fake_model(
                    "chat",
                    base,
                    context_window=WINDOW,
                    pricing=PRICING,
                    context={"strategy": "summarize", **context},
                ),
                # summaries written by another model of a bigger window
                fake_model(
                    "delegating",
                    base,
                    context_window=WINDOW,
                    context={"strategy": "summarize", "summarizer_model": "writer", **context},
                ),
                fake_model("writer", base, context_window=4 * WINDOW, pricing=PRICING),
            ],
        }
    )


@pytest.fixture
def upstream(fake_openai: FakeOpenAI) -> Summaries:
    summaries = Summaries()
    fake_openai.default = summaries
    return summaries


def chat(
    door: PortwayServer,
    messages: list[dict[str, Any]],
    *,
    model: str = "chat",
    key: str = MASTER,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return httpx.post(
        f"{door.base_url}/chat/completions",
        json={"model": model, "messages": messages, "max_tokens": RESERVE},
        headers={"authorization": f"Bearer {key}", **(headers or {})},
        timeout=60,
    )


def grown(turns: int, topic: str = "topic") -> list[dict[str, Any]]:
    """``conversation(turns)`` with each question about ``topic`` (distinct histories)."""
    return [
        {**m, "content": m["content"].replace("topic", topic)} if m["role"] != "system" else m
        for m in conversation(turns)
    ]


def summary_of(sent: list[dict[str, Any]]) -> str:
    assert sent[1]["role"] == "system", sent[:2]
    header, text = sent[1]["content"].split("\n", 1)
    assert header == SUMMARY_HEADER
    return text


def test_summarize_sends_the_system_prompt_a_summary_and_the_newest_turns(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    messages = grown(40, "alpha")
    before = upstream_tokens(messages, "upstream-chat")
    response = chat(door, messages)
    assert response.status_code == 200, response.text
    assert response.headers["x-portway-context"] == "summarized"
    [main] = model_calls(fake_openai)
    sent = main.body["messages"]
    assert sent[0] == SYSTEM
    assert summary_of(sent) == upstream.written[-1]
    tail = sent[2:]
    assert tail and tail == messages[len(messages) - len(tail) :]
    after = upstream_tokens(sent, "upstream-chat")
    assert after <= BUDGET
    assert response.headers["x-portway-context-tokens"] == f"{before}->{after}"
    assert response.headers["x-portway-context-messages"] == f"{len(messages)}->{len(sent)}"
    # the summary covers exactly the turns left out: from the first question to the last
    # one before the tail
    number = int(re.search(r"\d+", tail[0]["content"]).group())  # type: ignore[union-attr]
    last = number if tail[0]["role"] == "assistant" else number - 1
    assert re.fullmatch(rf"S\d+\[turns 0-{last}\]", upstream.written[-1]), upstream.written


def test_a_stable_prefix_is_summarized_once_then_folded_incrementally(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    messages = grown(40, "beta")
    assert chat(door, messages).status_code == 200
    first_calls = len(summarizer_calls(fake_openai))
    assert first_calls >= 1
    first_summary = summary_of(model_calls(fake_openai)[-1].body["messages"])

    # the same history again, then one more exchange: no summarizer call, same summary
    assert chat(door, messages).status_code == 200
    longer = [*messages, {"role": "assistant", "content": "It is topic 7."}]
    longer.append({"role": "user", "content": "And topic 8?"})
    response = chat(door, longer)
    assert response.status_code == 200, response.text
    assert len(summarizer_calls(fake_openai)) == first_calls
    assert summary_of(model_calls(fake_openai)[-1].body["messages"]) == first_summary

    # the conversation grows until the summary must move: only the new turns are folded,
    # into the previous summary
    current = longer
    for turn in range(40, 80):
        if len(summarizer_calls(fake_openai)) > first_calls:
            break
        current = [
            *current,
            {"role": "assistant", "content": f"Answer {turn}: fine."},
            {"role": "user", "content": f"Question {turn}: what about beta {turn}?"},
        ]
        assert chat(door, current).status_code == 200
    fold = summarizer_calls(fake_openai)[first_calls]
    prompt = fold.body["messages"][-1]["content"]
    assert f"Summary so far:\n{first_summary}" in prompt
    assert "Question 0:" not in prompt  # already summarized: not sent again
    sent = model_calls(fake_openai)[-1].body["messages"]
    assert summary_of(sent) == upstream.written[-1] != first_summary
    assert upstream_tokens(sent, "upstream-chat") <= BUDGET


def test_another_tenant_does_not_reuse_a_summary(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    messages = grown(40, "gamma")
    assert chat(door, messages).status_code == 200
    calls = len(summarizer_calls(fake_openai))
    other = door.create_key(MASTER, team="team-other")["key"]
    assert chat(door, messages, key=other).status_code == 200
    assert len(summarizer_calls(fake_openai)) == 2 * calls


def ledger(door: PortwayServer, request_id: str, rows: int) -> list[dict[str, Any]]:
    database_url = door.app.state.services.settings.database_url

    def read() -> list[dict[str, Any]] | None:
        stored = asyncio.run(stored_rows(database_url))
        mine = [row for row in stored if row["request_id"] == request_id]
        return mine if len(mine) >= rows else None

    return wait_for(read)  # type: ignore[no-any-return]


def test_the_summarizer_is_billed_to_the_caller_and_on_its_row(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    key = door.create_key(MASTER, team="team-bill")
    response = chat(door, grown(40, "delta"), key=key["key"])
    assert response.status_code == 200, response.text
    calls = len(summarizer_calls(fake_openai))
    rows = ledger(door, response.headers["x-request-id"], calls + 1)
    summarizer = [row for row in rows if row["endpoint"] == "context.summarize"]
    [main] = [row for row in rows if row["endpoint"] == "chat.completions"]
    assert len(summarizer) == calls
    assert {row["key_id"] for row in rows} == {key["id"]}
    assert all(row["cost_nanos"] > 0 for row in summarizer)
    assert main["context_strategy"] == "summarize"
    assert main["context_cost_nanos"] == sum(row["cost_nanos"] for row in summarizer)


def test_a_configured_summarizer_model_writes_the_summary(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    response = chat(door, grown(40, "epsilon"), model="delegating")
    assert response.status_code == 200, response.text
    calls = summarizer_calls(fake_openai)
    assert calls and {c.body["model"] for c in calls} == {"upstream-writer"}
    # the summarizer's own calls are not fitted again (no summary of a summary)
    assert all(len(c.body["messages"]) == 2 for c in calls)
    assert all(c.body["max_tokens"] == SUMMARY_TOKENS for c in calls)
    assert model_calls(fake_openai)[-1].body["model"] == "upstream-delegating"


def test_retrieve_puts_back_the_older_turn_the_new_one_is_about(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    messages = grown(40, "zeta")
    messages[2 * 3 + 1] = {"role": "user", "content": "Question 3: my zeppelin is called Oberon."}
    messages[-1] = {"role": "user", "content": "What is my zeppelin called?"}
    response = chat(door, messages, headers={"x-portway-context": "retrieve"})
    assert response.status_code == 200, response.text
    assert response.headers["x-portway-context"] == "retrieved"
    sent = model_calls(fake_openai)[-1].body["messages"]
    assert sent[0] == SYSTEM and summary_of(sent)
    assert sent[2] == messages[7]  # the old turn, right after the summary
    tail = sent[3:]
    assert tail == messages[len(messages) - len(tail) :]
    assert messages[7] not in tail
    assert upstream_tokens(sent, "upstream-chat") <= BUDGET


def test_a_prompt_that_fits_is_left_alone(
    door: PortwayServer, fake_openai: FakeOpenAI, upstream: Summaries
) -> None:
    messages = grown(2, "eta")
    response = chat(door, messages)
    assert response.status_code == 200, response.text
    assert response.headers["x-portway-context"] == "none"
    assert summarizer_calls(fake_openai) == []
    assert model_calls(fake_openai)[-1].body["messages"] == messages
