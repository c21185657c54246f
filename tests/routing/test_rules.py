"""Rule conditions and the prompt count they may ask for, without HTTP."""

from __future__ import annotations

from typing import Any

from portway.accounting.estimate import UsageEstimator
from portway.accounting.tokenizer import TokenizerService
from portway.config import Settings
from portway.pipeline.base import CallContext, PromptCounter
from portway.protocol.chat import ChatCompletionDict, ChatCompletionRequest
from portway.providers.registry import ProviderRegistry
from portway.routing.catalog import ModelCatalog
from portway.routing.config import VirtualModelConfig
from portway.routing.degrade import static_completion
from portway.routing.router import Router
from portway.routing.rules import VirtualModel
from portway.security.principal import ANONYMOUS, Principal
from tests.conftest import fake_model


def _ctx(
    text: str = "hi",
    headers: dict[str, str] | None = None,
    principal: Principal = ANONYMOUS,
    count_prompt: PromptCounter | None = None,
    **body: Any,
) -> CallContext:
    request = ChatCompletionRequest.model_validate(
        {"model": "auto", "messages": [{"role": "user", "content": text}], **body}
    )
    ctx = CallContext(
        request_id="r", principal=principal, request=request, request_headers=headers or {}
    )
    if count_prompt is not None:
        ctx.count_prompt = count_prompt
    return ctx


async def test_the_prompt_is_counted_lazily_and_once() -> None:
    calls: list[str] = []

    async def count(ctx: CallContext) -> int:
        calls.append(ctx.model)
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
    assert await model.choose(model.facts(_ctx(tools=tools, count_prompt=count))) == "a"
    assert calls == []  # the first rule matched; nobody counted anything
    ctx = _ctx(count_prompt=count)
    assert await model.choose(model.facts(ctx)) == "b"
    assert await ctx.prompt_tokens() == 10_000  # a later stage gets the same count ...
    assert calls == ["auto"]  # ... without counting again


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
    assert await model.choose(model.facts(_ctx(headers={"x-portway-tier": "premium"}))) == "big"
    assert (
        await model.choose(
            model.facts(_ctx(headers={"x-portway-tier": "premium"}, principal=keyed))
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
    assert await model.choose(model.facts(_ctx("hard question"))) == "c"
    assert len(asked) == 1
    assert asked[0].messages[1].content == "hard "  # truncated to max_chars


async def test_a_count_of_zero_is_a_count_not_unknown() -> None:
    """Before, 0 meant "unknown" to some stages and each counted again its own way."""
    counted: list[str] = []

    async def count(ctx: CallContext) -> int:
        counted.append(ctx.model)
        return 0

    config = VirtualModelConfig.model_validate(
        {"rules": [{"when": {"prompt_tokens_over": 100}, "use": "big"}, {"use": "small"}]}
    )
    model = VirtualModel("auto", config, _never_asked)
    ctx = _ctx("word " * 200, count_prompt=count)
    assert await model.choose(model.facts(ctx)) == "small"
    assert await model.choose(model.facts(ctx)) == "small"
    assert counted == ["auto"]


async def test_a_virtual_models_prompt_is_counted_over_its_targets() -> None:
    config = Settings.model_validate(
        {
            "models": [fake_model(n, "http://127.0.0.1:9/v1") for n in ("big", "small")],
            "router": {
                "auto": {
                    "rules": [{"when": {"prompt_tokens_over": 100}, "use": "big"}, {"use": "small"}]
                }
            },
        }
    )
    catalog = ModelCatalog.from_configs(config.models, ProviderRegistry(), config.accounting)
    router = Router(catalog, config.router)
    estimator = UsageEstimator(TokenizerService(), catalog, config.accounting, router)
    model = router.virtual_models["auto"]
    ctx = _ctx("word " * 200, count_prompt=estimator.count_prompt)
    assert await model.choose(model.facts(ctx)) == "big"
    assert await ctx.prompt_tokens() > 100
    short = _ctx("short", count_prompt=estimator.count_prompt)
    assert await model.choose(model.facts(short)) == "small"
