"""A stream cut mid-answer resumes on the real local model, which continues it natively.

A fake OpenAI-compatible upstream streams part of an answer and drops the connection;
the group's other deployment is the local SmolLM2-135M (``prefill`` by default), which
continues the partial answer as its own reply's start. The client reads one stream.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.openai_upstream import Drop, Fail, Reply
from tests.routing.conftest import Gateway, deployment

pytestmark = pytest.mark.slow

ANSWER = "The quick brown fox jumps over the lazy dog, then rests in the warm sun."
ROUTE = {"strategy": "priority", "retries": 1, "backoff": {"base": "5ms", "max": "10ms"}}
LOCAL = {"name": "chat", "provider": "local", "priority": 1, "options": {"n_threads": 1}}
ASK = {"model": "chat", "temperature": 0, "max_tokens": 30}
MESSAGES = [{"role": "user", "content": "Say something about a fox."}]


def _text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def _first_pieces(text: str, count: int) -> str:
    """The content the fake streams before it drops (``split_text`` in three parts)."""
    size = max(1, len(text) // 3)
    return "".join([text[i : i + size] for i in range(0, len(text), size)][:count])


def test_a_cut_stream_resumes_on_the_local_model(gateway_for: Any, upstreams: Any) -> None:
    upstreams[0].default = Drop(after=3, reply=Reply(content=ANSWER))
    gateway: Gateway = gateway_for(
        [deployment("chat", upstreams[0], priority=0, prefill=True), LOCAL], {"chat": ROUTE}
    )
    client = gateway.server.sdk()
    chunks = list(
        client.chat.completions.create(
            messages=MESSAGES, stream=True, stream_options={"include_usage": True}, **ASK
        )
    )
    partial = _first_pieces(ANSWER, 2)
    text = _text(chunks)
    assert text.startswith(partial) and len(text) > len(partial)
    assert {c.id for c in chunks} == {chunks[0].id}
    roles = [c.choices[0].delta.role for c in chunks if c.choices and c.choices[0].delta.role]
    assert roles == ["assistant"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert 'portway_upstream_attempts_total{model="chat"} 2.0' in gateway.http.get("/metrics").text

    # The same continuation, asked for directly (the fake now fails over to the local
    # model): greedy decoding writes the same words, so the resume was a native prefill.
    upstreams[0].default = Fail(status=503)
    direct = client.chat.completions.create(
        messages=[*MESSAGES, {"role": "assistant", "content": partial}],
        extra_body={"continue_final_message": True},
        **ASK,
    )
    resumed = text[len(partial) :]
    alone = direct.choices[0].message.content
    assert alone and (alone.startswith(resumed) or resumed.startswith(alone))
