"""How a local deployment is asked to continue a cut answer (no model load needed)."""

from __future__ import annotations

import pytest

from portway.config import ModelConfig
from portway.protocol.chat import ChatCompletionRequest
from portway.providers.local import CONTINUE_FLAG, LocalProvider

REQUEST = ChatCompletionRequest.model_validate(
    {"model": "smol", "messages": [{"role": "user", "content": "Tell me."}], "max_tokens": 9}
)


def local(**config: object) -> LocalProvider:
    return LocalProvider(
        ModelConfig.model_validate({"name": "smol", "provider": "local", **config})
    )


def test_local_chat_models_prefill_unless_configured_off() -> None:
    assert local().capabilities.prefill is True
    assert local(prefill=False).capabilities.prefill is False
    assert local(options={"embedding": True}).capabilities.prefill is False


def test_the_partial_answer_becomes_a_flagged_final_message_without_trailing_space() -> None:
    continued = local().continuation(REQUEST, "Once upon a \n")
    request = continued.request
    assert request.messages[-1].role == "assistant"
    assert request.messages[-1].content == "Once upon a"
    assert (request.model_extra or {})[CONTINUE_FLAG] is True
    assert continued.echo == " \n"  # the model writes the space again with its next word
    assert request.messages[:-1] == REQUEST.messages and request.max_tokens == 9


@pytest.mark.parametrize("partial", ["", "  "])
def test_nothing_to_continue_asks_again(partial: str) -> None:
    continued = local().continuation(REQUEST, partial)
    assert continued.request.messages == REQUEST.messages
    assert CONTINUE_FLAG not in (continued.request.model_extra or {})
    assert continued.echo == partial
