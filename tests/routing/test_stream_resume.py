"""A text stream cut after content reached the client resumes on a prefill deployment.

Through HTTP with the OpenAI SDK against fake OpenAI-compatible upstreams that honour
vLLM's ``continue_final_message``: the client reads the whole answer exactly once under
one id, and the ledger bills every attempt.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.fakes import anthropic_upstream as claude
from tests.fakes.openai_upstream import Drop, ErrorEvent, Reply, Stall
from tests.fakes.upstream import split_text
from tests.routing.conftest import Gateway, deployment

ANSWER = "The quick brown fox jumps over the lazy dog, then rests in the warm sun."
ROUTE = {"strategy": "priority", "retries": 1, "backoff": {"base": "5ms", "max": "10ms"}}
TOOL_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "lookup", "arguments": '{"city": "Paris", "units": "metric"}'},
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def resuming(gateway_for: Any, upstreams: Any, tmp_path: Path) -> Any:
    """A gateway over two prefill-capable deployments of ``chat`` (priority: #0 first)."""

    def start(**route: Any) -> Gateway:
        models = [
            deployment("chat", upstreams[0], priority=0, prefill=True, timeout=0.5),
            deployment("chat", upstreams[1], priority=1, prefill=True),
        ]
        return gateway_for(
            models, {"chat": {**ROUTE, **route}}, database_url=f"sqlite:///{tmp_path}/p.db"
        )

    start.db = tmp_path / "p.db"  # type: ignore[attr-defined]
    return start


def _stream(gateway: Gateway, **body: Any) -> list[Any]:
    client = gateway.server.sdk()
    return list(
        client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "tell me"}],
            stream=True,
            stream_options={"include_usage": True},
            **body,
        )
    )


def _text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _ledger_row(db: Path) -> dict[str, Any]:
    """The call's ledger row (written just after the stream ends)."""
    deadline = time.monotonic() + 10
    while True:
        with sqlite3.connect(db) as connection:
            connection.row_factory = sqlite3.Row
            rows = connection.execute(
                "SELECT * FROM usage_records WHERE endpoint = 'chat.completions'"
            ).fetchall()
        if rows or time.monotonic() > deadline:
            assert len(rows) == 1
            return dict(rows[0])
        time.sleep(0.05)


@pytest.mark.parametrize(
    "cut",
    [
        Drop(after=3, reply=Reply(content=ANSWER)),
        ErrorEvent(after=3, reply=Reply(content=ANSWER)),
        Stall(after=3, seconds=3.0, reply=Reply(content=ANSWER)),
    ],
    ids=["dropped", "error-event", "stalled"],
)
def test_a_cut_stream_resumes_with_the_whole_text_once(resuming, upstreams, cut) -> None:
    upstreams[0].default = cut
    upstreams[1].default = Reply(content=ANSWER, prompt_tokens=30, completion_tokens=11)
    gateway = resuming()
    chunks = _stream(gateway)
    assert _text(chunks) == ANSWER  # no duplication, no gap
    assert {c.id for c in chunks} == {chunks[0].id}
    assert {c.model for c in chunks} == {"chat"}
    assert [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role] == [
        "assistant"
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    # The second upstream continued what the client had: the partial answer as a prefix.
    sent = "".join(split for split in _first_pieces(ANSWER, 2))
    [resumed] = upstreams[1].requests
    assert resumed.body["messages"][-1] == {"role": "assistant", "content": sent}
    assert resumed.body["continue_final_message"] is True
    assert resumed.body["add_generation_prompt"] is False
    # One final usage: the cut attempt (estimated) plus the resumed one (reported).
    usage = chunks[-1].usage
    assert usage is not None and [c for c in chunks if c.usage] == [chunks[-1]]
    assert usage.prompt_tokens > 30 and usage.completion_tokens > 11
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    row = _ledger_row(resuming.db)
    assert row["status"] == 200 and row["attempts"] == 2
    metrics = gateway.http.get("/metrics").text
    assert 'portway_upstream_attempts_total{model="chat"} 2.0' in metrics
    assert (row["prompt_tokens"], row["completion_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )


def _first_pieces(text: str, count: int) -> list[str]:
    """The content pieces the fake streams first (``split_text`` in three parts)."""
    size = max(1, len(text) // 3)
    return [text[i : i + size] for i in range(0, len(text), size)][:count]


def test_the_same_deployment_continues_when_it_is_the_only_one(gateway_for, upstreams) -> None:
    upstreams[0].script(Drop(after=2, reply=Reply(content=ANSWER)))
    upstreams[0].default = Reply(content=ANSWER)
    gateway = gateway_for(
        [deployment("chat", upstreams[0], prefill=True)], {"chat": {**ROUTE, "retries": 0}}
    )
    chunks = _stream(gateway)
    assert _text(chunks) == ANSWER
    assert len(upstreams[0].requests) == 2


def test_resumes_are_bounded_then_the_error_event_comes_as_before(resuming, upstreams) -> None:
    # Every attempt streams a little more, then drops: two resumes, then the stream ends.
    upstreams[0].default = Drop(after=2, reply=Reply(content=ANSWER))
    upstreams[1].default = Drop(after=2, reply=Reply(content=ANSWER))
    gateway = resuming(max_stream_resumes=2)
    received: list[Any] = []
    with pytest.raises(openai.APIError) as raised:
        for chunk in gateway.server.sdk().chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "x"}], stream=True
        ):
            received.append(chunk)
    assert "upstream" in str(raised.value.message).lower()
    # Each attempt added one new piece; the text so far is a clean prefix of the answer.
    assert ANSWER.startswith(_text(received)) and len(_text(received)) > len(ANSWER) // 3
    assert len(upstreams[0].requests) + len(upstreams[1].requests) == 3
    row = _ledger_row(resuming.db)
    assert row["attempts"] == 3 and row["completion_tokens"] > 0


def test_resume_off_keeps_the_error_event(resuming, upstreams) -> None:
    upstreams[0].default = Drop(after=2, reply=Reply(content=ANSWER))
    gateway = resuming(stream_resume=False)
    with pytest.raises(openai.APIError):
        _stream(gateway)
    assert upstreams[1].requests == []


def test_openai_compatible_upstreams_do_not_prefill_unless_told(gateway_for, upstreams) -> None:
    upstreams[0].default = Drop(after=2, reply=Reply(content=ANSWER))
    models = [
        deployment("chat", upstreams[0], priority=0),
        deployment("chat", upstreams[1], priority=1),
    ]
    gateway = gateway_for(models, {"chat": ROUTE})
    with pytest.raises(openai.APIError):
        _stream(gateway)
    assert upstreams[1].requests == [] and len(upstreams[0].requests) == 1


def test_a_cut_inside_a_tool_call_ends_with_the_error_event(resuming, upstreams) -> None:
    # role, then the tool call's name, then part of its arguments: the client has half a call.
    upstreams[0].default = Drop(after=3, reply=Reply(tool_calls=[TOOL_CALL]))
    gateway = resuming()
    with pytest.raises(openai.APIError):
        _stream(gateway, tools=TOOLS)
    assert upstreams[1].requests == []


def test_a_cut_before_the_tool_call_started_restarts_it_cleanly(resuming, upstreams) -> None:
    upstreams[0].default = Drop(after=1, reply=Reply(tool_calls=[TOOL_CALL]))
    upstreams[1].default = Reply(tool_calls=[TOOL_CALL])
    gateway = resuming()
    chunks = _stream(gateway, tools=TOOLS)
    arguments = "".join(
        call.function.arguments or ""
        for c in chunks
        if c.choices
        for call in c.choices[0].delta.tool_calls or ()
    )
    assert arguments == TOOL_CALL["function"]["arguments"]
    [restarted] = upstreams[1].requests
    assert restarted.body["messages"][-1]["role"] == "user"  # nothing to continue: a fresh ask
    assert "continue_final_message" not in restarted.body


def test_the_continuation_asks_only_for_the_output_left(resuming, upstreams) -> None:
    upstreams[0].default = Drop(after=3, reply=Reply(content=ANSWER))
    upstreams[1].default = Reply(content=ANSWER)
    gateway = resuming()
    chunks = _stream(gateway, max_tokens=40)
    assert _text(chunks) == ANSWER
    [resumed] = upstreams[1].requests
    # The first attempt's text counted against the client's cap: the rest is asked for.
    assert 0 < resumed.body["max_tokens"] < 40
    assert "max_completion_tokens" not in resumed.body


def test_anthropic_continues_its_prefill_without_a_doubled_space(
    gateway_for, fake_anthropic
) -> None:
    text = "Streams survive a cut. The client reads one seamless answer, in full!"
    assert split_text(text)[0].endswith(" ")  # the cut falls right after a space
    # message_start, ping, content_block_start, then the first text delta: cut.
    fake_anthropic.script(claude.Drop(after=4, reply=claude.Reply(text=text)))
    fake_anthropic.default = claude.Reply(text=text, input_tokens=40, output_tokens=9)
    model = {
        "name": "claude",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "base_url": fake_anthropic.base_url,
        "api_key": "sk-ant-test",
    }
    gateway = gateway_for([model], {"claude": {"retries": 1}})
    chunks = list(
        gateway.server.sdk().chat.completions.create(
            model="claude", messages=[{"role": "user", "content": "go"}], stream=True
        )
    )
    assert _text(chunks) == text
    assert {c.id for c in chunks} == {chunks[0].id}
    first, resumed = fake_anthropic.requests
    assert first.body["messages"][-1]["role"] == "user"
    # Anthropic rejects a prefill ending in whitespace: it went trimmed, and the space it
    # sent back was not given to the client twice.
    assert resumed.body["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": split_text(text)[0].rstrip()}],
    }
