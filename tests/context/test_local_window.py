"""The real local model with a 2048-token window: a 40-turn conversation is refused under
``error`` and answered under ``truncate``, ``middle-out``, ``summarize`` and ``retrieve``
(the local model writing its own summaries), with a prompt that fits by the model's own
count (llama.cpp's ``usage.prompt_tokens``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import PortwayFactory
from tests.fakes.server import PortwayServer

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
N_CTX = 2048
MAX_TOKENS = 16
SUMMARY_TOKENS = 48


def conversation(turns: int = 40) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Answer in one word."}]
    for turn in range(turns):
        messages.append(
            {
                "role": "user",
                "content": f"Turn {turn}: describe the colour of the sea on day {turn} in "
                "a short sentence, thinking of waves, wind, clouds and the light.",
            }
        )
        messages.append(
            {
                "role": "assistant",
                "content": f"On day {turn} the sea was grey and green under low clouds, "
                "with white crests where the wind pushed the waves to the shore.",
            }
        )
    messages.append({"role": "user", "content": "What colour was the sea on the last day?"})
    return messages


@pytest.fixture(scope="module")
def small(start_portway: PortwayFactory) -> PortwayServer:
    return start_portway(
        {
            "models": [
                {
                    "name": MODEL,
                    "provider": "local",
                    "options": {"n_ctx": N_CTX},
                    "context": {"summary_max_tokens": SUMMARY_TOKENS},
                }
            ]
        }
    )


def chat(server: PortwayServer, strategy: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/chat/completions",
        json={
            "model": MODEL,
            "messages": conversation(),
            "max_tokens": MAX_TOKENS,
            "temperature": 0,
        },
        headers={"x-portway-context": strategy},
        timeout=900,
    )


def test_error_refuses_the_long_conversation_before_the_model(small: PortwayServer) -> None:
    response = chat(small, "error")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "context_length_exceeded"
    # the stage's message (the window and the reserve), not llama.cpp's refusal
    assert f"{N_CTX} tokens, {MAX_TOKENS} of them reserved" in error["message"]


@pytest.mark.parametrize("strategy", ["truncate", "middle-out"])
def test_dropping_strategies_answer_within_the_window(small: PortwayServer, strategy: str) -> None:
    response = chat(small, strategy)
    assert response.status_code == 200, response.text
    assert response.headers["x-portway-context"] == "truncated"
    before, after = map(int, response.headers["x-portway-context-tokens"].split("->"))
    assert before > N_CTX - MAX_TOKENS >= after
    usage = response.json()["usage"]
    # the model's own count of the prompt it was given
    assert usage["prompt_tokens"] + MAX_TOKENS <= N_CTX
    assert usage["prompt_tokens"] <= after


@pytest.mark.parametrize(
    ("strategy", "outcome"), [("summarize", "summarized"), ("retrieve", "retrieved")]
)
def test_summarizing_strategies_answer_within_the_window(
    small: PortwayServer, strategy: str, outcome: str
) -> None:
    response = chat(small, strategy)
    assert response.status_code == 200, response.text
    assert response.headers["x-portway-context"] in (outcome, "summarized")
    before, after = map(int, response.headers["x-portway-context-tokens"].split("->"))
    assert before > N_CTX - MAX_TOKENS >= after
    messages, kept = map(int, response.headers["x-portway-context-messages"].split("->"))
    assert kept < messages
    usage = response.json()["usage"]
    # the model's own count of the prompt it was given, summary included
    assert usage["prompt_tokens"] + MAX_TOKENS <= N_CTX
    assert usage["prompt_tokens"] <= after
