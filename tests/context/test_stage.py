"""The context stage through HTTP: the body that reaches the upstream is what the chosen
strategy (header, key metadata, group config) promised; ``error`` never calls upstream."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from portway.accounting.tokenizer import TokenizerService
from portway.protocol.chat import ChatCompletionRequest
from tests.assistants.support import wait_for
from tests.conftest import PortwayFactory, fake_model
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.server import PortwayServer
from tests.responses.support import stored_rows

MASTER = "sk-master-context"
WINDOW = 400
RESERVE = 50  # each test asks max_tokens=50; the groups reserve as much
BUDGET = WINDOW - RESERVE
SYSTEM = {"role": "system", "content": "You are a terse assistant."}


def conversation(turns: int = 40) -> list[dict[str, Any]]:
    """A system prompt, then ``turns`` user/assistant exchanges, ending on a user turn."""
    messages: list[dict[str, Any]] = [SYSTEM]
    for turn in range(turns):
        messages.append({"role": "user", "content": f"Question {turn}: what about topic {turn}?"})
        messages.append({"role": "assistant", "content": f"Answer {turn}: it is fine, {turn}."})
    messages.append({"role": "user", "content": "And finally, summarize topic 7?"})
    return messages


def upstream_tokens(messages: list[dict[str, Any]], model: str) -> int:
    """The prompt as the tokenizer service counts it for the upstream model."""
    request = ChatCompletionRequest.model_validate({"model": model, "messages": messages})

    async def count() -> int:
        counter = await TokenizerService().counter("openai", model)
        return counter.count_request(request)

    return asyncio.run(count())


@pytest.fixture(scope="module")
def door(start_portway: PortwayFactory, fake_openai_server: FakeOpenAI) -> PortwayServer:
    base = fake_openai_server.base_url
    return start_portway(
        {
            "master_key": MASTER,
            "models": [
                fake_model("plain", base, context_window=WINDOW),
                fake_model(
                    "middle",
                    base,
                    context_window=WINDOW,
                    context={"strategy": "middle-out", "reserve_output_tokens": RESERVE},
                ),
                fake_model("nowindow", base),
                # a group whose deployments differ: the smallest window applies
                fake_model("mixed", base, context_window=100 * WINDOW),
                fake_model("mixed", base, context_window=WINDOW),
            ],
        }
    )


def chat(
    door: PortwayServer,
    model: str,
    messages: list[dict[str, Any]],
    *,
    key: str = MASTER,
    headers: dict[str, str] | None = None,
    stream: bool = False,
) -> httpx.Response:
    body = {"model": model, "messages": messages, "max_tokens": RESERVE, "stream": stream}
    return httpx.post(
        f"{door.base_url}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}", **(headers or {})},
        timeout=30,
    )


def sent(fake: FakeOpenAI) -> list[dict[str, Any]]:
    assert len(fake.requests) == 1
    return fake.requests[0].body["messages"]  # type: ignore[no-any-return]


def test_off_by_default_the_prompt_goes_as_sent(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    messages = conversation()
    response = chat(door, "plain", messages)
    assert response.status_code == 200, response.text
    assert sent(fake_openai) == messages
    assert "x-portway-context" not in response.headers


def test_header_truncate_keeps_the_system_prompt_and_the_newest_turns(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    messages = conversation()
    before = upstream_tokens(messages, "upstream-plain")
    assert before > BUDGET
    response = chat(door, "plain", messages, headers={"x-portway-context": "truncate"})
    assert response.status_code == 200, response.text
    upstream = sent(fake_openai)
    assert upstream[0] == SYSTEM
    rest = upstream[1:]
    assert rest == messages[len(messages) - len(rest) :]  # the newest turns, whole
    after = upstream_tokens(upstream, "upstream-plain")
    assert after <= BUDGET
    # one more turn would not have fit
    one_more = [SYSTEM, *messages[len(messages) - len(rest) - 1 :]]
    assert upstream_tokens(one_more, "upstream-plain") > BUDGET
    assert response.headers["x-portway-context"] == "truncated"
    assert response.headers["x-portway-context-tokens"] == f"{before}->{after}"


def test_group_config_middle_out_keeps_the_first_turn(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    messages = conversation()
    response = chat(door, "middle", messages)
    assert response.status_code == 200, response.text
    upstream = sent(fake_openai)
    assert upstream[:2] == messages[:2]  # the system prompt and the first question
    rest = upstream[2:]
    assert rest == messages[len(messages) - len(rest) :]
    assert len(upstream) < len(messages)
    assert upstream_tokens(upstream, "upstream-middle") <= BUDGET
    assert response.headers["x-portway-context"] == "truncated"


def test_the_header_overrides_the_group(door: PortwayServer, fake_openai: FakeOpenAI) -> None:
    messages = conversation()
    response = chat(door, "middle", messages, headers={"x-portway-context": "off"})
    assert response.status_code == 200, response.text
    assert sent(fake_openai) == messages


def test_a_key_chooses_its_strategy_in_its_metadata(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    key = door.create_key(MASTER, metadata={"context_strategy": "truncate"})["key"]
    messages = conversation()
    response = chat(door, "plain", messages, key=key)
    assert response.status_code == 200, response.text
    upstream = sent(fake_openai)
    assert upstream[0] == SYSTEM and upstream[-1] == messages[-1]
    assert len(upstream) < len(messages)
    assert response.headers["x-portway-context"] == "truncated"


def test_a_short_prompt_is_left_alone_and_says_so(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    messages = conversation(2)
    response = chat(door, "plain", messages, headers={"x-portway-context": "truncate"})
    assert response.status_code == 200, response.text
    assert sent(fake_openai) == messages
    assert response.headers["x-portway-context"] == "none"
    tokens = upstream_tokens(messages, "upstream-plain")
    assert response.headers["x-portway-context-tokens"] == f"{tokens}->{tokens}"


def test_error_answers_400_with_the_counts_before_any_upstream_call(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    messages = conversation()
    response = chat(door, "plain", messages, headers={"x-portway-context": "error"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "messages"
    before = upstream_tokens(messages, "upstream-plain")
    assert str(WINDOW) in error["message"] and str(before) in error["message"]
    assert fake_openai.requests == []


def test_a_stream_is_truncated_too(door: PortwayServer, fake_openai: FakeOpenAI) -> None:
    messages = conversation()
    response = chat(door, "plain", messages, headers={"x-portway-context": "truncate"}, stream=True)
    assert response.status_code == 200, response.text
    assert "data: [DONE]" in response.text
    upstream = sent(fake_openai)
    assert upstream[0] == SYSTEM and upstream[-1] == messages[-1]
    assert upstream_tokens(upstream, "upstream-plain") <= BUDGET
    assert response.headers["x-portway-context"] == "truncated"


def test_tool_calls_stay_with_their_results(door: PortwayServer, fake_openai: FakeOpenAI) -> None:
    messages = conversation(12)
    for turn in range(12):  # each exchange's answer is a tool round
        call_id = f"call_{turn}"
        index = 2 + turn * 2
        messages[index] = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        }
    for turn in reversed(range(12)):
        messages.insert(
            3 + turn * 2, {"role": "tool", "tool_call_id": f"call_{turn}", "content": "r" * 40}
        )
    response = chat(door, "plain", messages, headers={"x-portway-context": "truncate"})
    assert response.status_code == 200, response.text
    upstream = sent(fake_openai)
    assert len(upstream) < len(messages)
    assert upstream[1]["role"] != "tool"  # no result without its call
    calls = {c["id"] for m in upstream for c in m.get("tool_calls") or ()}
    results = {m["tool_call_id"] for m in upstream if m["role"] == "tool"}
    assert calls == results


def test_an_unknown_strategy_is_a_400(door: PortwayServer, fake_openai: FakeOpenAI) -> None:
    response = chat(door, "plain", conversation(), headers={"x-portway-context": "shrink"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "x-portway-context"
    assert fake_openai.requests == []


def test_a_group_without_a_window_is_sent_whole(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    messages = conversation()
    response = chat(door, "nowindow", messages, headers={"x-portway-context": "truncate"})
    assert response.status_code == 200, response.text
    assert sent(fake_openai) == messages
    assert response.headers["x-portway-context"] == "none"


def ledger_row(door: PortwayServer, request_id: str) -> dict[str, Any]:
    database_url = door.app.state.services.settings.database_url

    def rows() -> list[dict[str, Any]]:
        stored = asyncio.run(stored_rows(database_url))
        return [row for row in stored if row["request_id"] == request_id]

    (row,) = wait_for(rows)
    return row


@pytest.mark.parametrize(
    ("model", "header", "status", "recorded"),
    [
        ("plain", "truncate", 200, "truncate"),
        ("middle", None, 200, "middle-out"),
        ("plain", "error", 400, "error"),
        ("plain", None, 200, None),
    ],
)
def test_the_ledger_row_records_the_strategy(
    door: PortwayServer,
    fake_openai: FakeOpenAI,
    model: str,
    header: str | None,
    status: int,
    recorded: str | None,
) -> None:
    headers = {"x-portway-context": header} if header else {}
    response = chat(door, model, conversation(), headers=headers)
    assert response.status_code == status, response.text
    row = ledger_row(door, response.headers["x-request-id"])
    assert row["context_strategy"] == recorded


def test_the_smallest_window_of_a_group_applies(
    door: PortwayServer, fake_openai: FakeOpenAI
) -> None:
    messages = conversation()
    response = chat(door, "mixed", messages, headers={"x-portway-context": "truncate"})
    assert response.status_code == 200, response.text
    upstream = sent(fake_openai)
    assert len(upstream) < len(messages)
    assert upstream_tokens(upstream, "upstream-mixed") <= BUDGET


def test_error_on_a_stream_is_a_plain_400(door: PortwayServer, fake_openai: FakeOpenAI) -> None:
    response = chat(
        door, "plain", conversation(), headers={"x-portway-context": "error"}, stream=True
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert fake_openai.requests == []
