"""Cache keys: canonical, tenant-scoped, and blind to delivery-only fields."""

from __future__ import annotations

from typing import Any

from portway.cache.keys import canonical_params, request_keys
from portway.protocol.chat import ChatCompletionRequest


def request(**fields: Any) -> ChatCompletionRequest:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}
    return ChatCompletionRequest.model_validate(body)


def test_delivery_fields_are_left_out_and_extras_kept() -> None:
    params = canonical_params(
        request(stream=True, stream_options={"include_usage": True}, user="u", top_k=3)
    )
    assert params == {"messages": [{"role": "user", "content": "hi"}], "top_k": 3}


def test_key_depends_on_namespace_and_model_not_field_order() -> None:
    one = request_keys(request(temperature=0, seed=1), "m", "team-a").exact
    same = request_keys(request(seed=1, temperature=0), "m", "team-a").exact
    assert one == same
    assert request_keys(request(temperature=0, seed=1), "m", "team-b").exact.digest != one.digest
    assert request_keys(request(temperature=0, seed=1), "m2", "team-a").exact.digest != one.digest


def test_context_leaves_out_only_the_last_user_message() -> None:
    history = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
    ]
    a = request_keys(request(messages=history), "m", "t")
    b = request_keys(
        request(messages=[history[0], {"role": "user", "content": "second"}]), "m", "t"
    )
    other_system = request_keys(
        request(messages=[{"role": "system", "content": "be long"}, history[1]]), "m", "t"
    )
    assert a.context == b.context and a.exact != b.exact
    assert a.context != other_system.context
    assert a.last_user_text == "first"


def test_no_semantic_text_when_the_conversation_ends_with_a_tool_result() -> None:
    messages = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert request_keys(request(messages=messages), "m", "t").last_user_text is None
