"""Rule conditions and the prompt-size estimate, without HTTP."""

from __future__ import annotations

from typing import Any

from portway.pipeline.base import CallContext
from portway.protocol.chat import ChatCompletionDict, ChatCompletionRequest
from portway.routing.config import VirtualModelConfig
from portway.routing.degrade import static_completion
from portway.routing.rules import VirtualModel
from portway.routing.tokens import estimate_prompt_tokens
from portway.security.principal import ANONYMOUS, Principal


def _ctx(
    text: str = "hi",
    headers: dict[str, str] | None = None,
    principal: Principal = ANONYMOUS,
    **body: Any,
) -> CallContext:
    request = ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": text}], **body}
    )
    return CallContext(
        request_id="r", principal=principal, request=request, request_headers=headers or {}
    )


def test_estimate_grows_with_text_and_tools() -> None:
    short = estimate_prompt_tokens(_ctx("hello").request)
    long = estimate_prompt_tokens(_ctx("hello " * 1000).request)
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with_tools = estimate_prompt_tokens(_ctx("hello", tools=tools).request)
    assert short < with_tools < long
    assert 1400 <= long <= 1600  # 6000 characters ≈ 1500 tokens


async def test_estimator_is_replaceable_and_lazy() -> None:
    calls: list[str] = []

    def estimator(request: ChatCompletionRequest) -> int:
        calls.append(request.model)
        return 10_000

    config = VirtualModelConfig.model_validate(
        {
            "rules": [
                {"when": {"has_tools": True}, "use": "a"},
                {"when": {"prompt_tokens_over": 100}, "use": "b"},
                {"use": "c"},
            ]
        }
    )
    model = VirtualModel("auto", config, _never_asked)
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert await model.choose(model.facts(_ctx(tools=tools), estimator)) == "a"
    assert calls == []  # the first rule matched; nobody estimated anything
    assert await model.choose(model.facts(_ctx(), estimator)) == "b"
    assert calls == ["auto"]


async def _never_asked(request: ChatCompletionRequest, parent: CallContext) -> ChatCompletionDict:
    raise AssertionError("no classifier configured")


async def test_tier_from_virtual_key_beats_the_header() -> None:
    config = VirtualModelConfig.model_validate(
        {
            "rules": [{"when": {"tier": "premium"}, "use": "big"}, {"use": "small"}],
            "trust_client_tier": True,
        }
    )
    model = VirtualModel("auto", config, _never_asked)
    keyed = Principal(kind="virtual_key", key_id="k", metadata={"tier": "free"})
    assert (
        await model.choose(
            model.facts(_ctx(headers={"x-portway-tier": "premium"}), estimate_prompt_tokens)
        )
        == "big"
    )
    assert (
        await model.choose(
            model.facts(
                _ctx(headers={"x-portway-tier": "premium"}, principal=keyed), estimate_prompt_tokens
            )
        )
        == "small"
    )


async def test_all_conditions_of_a_rule_must_hold_and_the_classifier_is_asked_once() -> None:
    asked: list[ChatCompletionRequest] = []

    async def ask(request: ChatCompletionRequest, parent: CallContext) -> ChatCompletionDict:
        assert parent.request_id == "r"  # asked on behalf of the call being routed
        asked.append(request)
        return static_completion("judge", "complex")

    config = VirtualModelConfig.model_validate(
        {
            "classifier": {"model": "judge", "max_chars": 5},
            "rules": [
                {"when": {"classified_as": "complex", "keywords": ["never"]}, "use": "a"},
                {"when": {"classified_as": "simple"}, "use": "b"},
                {"when": {"classified_as": "complex"}, "use": "c"},
                {"use": "d"},
            ],
        }
    )
    model = VirtualModel("auto", config, ask)
    assert await model.choose(model.facts(_ctx("hard question"), estimate_prompt_tokens)) == "c"
    assert len(asked) == 1
    assert asked[0].messages[1].content == "hard "  # truncated to max_chars


async def test_an_unknown_upstream_estimate_does_not_hide_long_prompts() -> None:
    config = VirtualModelConfig.model_validate(
        {"rules": [{"when": {"prompt_tokens_over": 100}, "use": "big"}, {"use": "small"}]}
    )
    model = VirtualModel("auto", config, _never_asked)
    ctx = _ctx("word " * 200)
    ctx.prompt_tokens_estimate = 0  # what accounting records for a name it cannot resolve
    assert await model.choose(model.facts(ctx, estimate_prompt_tokens)) == "big"
    assert ctx.prompt_tokens_estimate > 100
    ctx = _ctx("short")
    ctx.prompt_tokens_estimate = 5000  # a real tokenizer's count is trusted
    assert await model.choose(model.facts(ctx, estimate_prompt_tokens)) == "big"
