"""Task-based routing: a virtual model's ordered rules pick a model group per request.

Contract: ``VirtualModel.choose(facts)`` returns the ``use`` of the first rule whose
conditions all hold (the last rule has none, so one always matches). Conditions are
compiled once at start-up from ``RuleCondition``; facts about a request (estimated
prompt tokens, tools, json_schema, last user message, tier, classification) are
computed lazily, at most once, and only when a rule asks. The classifier is a small
model asked "simple or complex" through the pipeline like any other call, on behalf of
the call being routed (``AskModel``: billed to its caller, under its limits); when it
fails or times out its conditions are false.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any, Protocol

from portway.errors import PortwayError
from portway.pipeline.base import CallContext
from portway.protocol.chat import (
    ChatCompletionDict,
    ChatCompletionRequest,
    ResponseFormatJSONSchema,
    UserMessage,
    message_text,
)
from portway.routing.config import ClassifierConfig, RuleCondition, VirtualModelConfig
from portway.routing.patterns import TextPattern, compile_pattern

logger = logging.getLogger(__name__)

TIER_HEADER = "x-portway-tier"
CLASSES = ("simple", "complex")

# Ask a model on behalf of the call being routed (the second argument).
AskModel = Callable[[ChatCompletionRequest, CallContext], Awaitable[ChatCompletionDict]]


class Classifier:
    """Asks a small model whether a request is simple or complex."""

    def __init__(self, config: ClassifierConfig, ask: AskModel) -> None:
        self._config = config
        self._ask = ask

    def request_for(self, text: str) -> ChatCompletionRequest:
        return ChatCompletionRequest.model_validate(
            {
                "model": self._config.model,
                "messages": [
                    {"role": "system", "content": self._config.prompt},
                    {"role": "user", "content": text[: self._config.max_chars]},
                ],
                "max_tokens": 4,
                "temperature": 0,
            }
        )

    async def classify(self, text: str, parent: CallContext) -> str | None:
        try:
            async with asyncio.timeout(self._config.timeout):
                completion = await self._ask(self.request_for(text), parent)
        except (PortwayError, TimeoutError) as exc:
            logger.info("classifier %s gave no answer: %s", self._config.model, exc)
            return None
        answer = (completion["choices"][0]["message"].get("content") or "").lower()
        found = [label for label in CLASSES if label in answer]
        return found[0] if len(found) == 1 else None


class RequestFacts:
    """What the rules may ask about one call, each computed on first use."""

    def __init__(
        self,
        ctx: CallContext,
        classifier: Classifier | None = None,
        *,
        trust_client_tier: bool = False,
    ) -> None:
        self._ctx = ctx
        self._classifier = classifier
        self._trust_client_tier = trust_client_tier
        self._classified = False
        self._classification: str | None = None

    @property
    def request(self) -> ChatCompletionRequest:
        return self._ctx.request

    async def prompt_tokens(self) -> int:
        """The call's prompt count (the pipeline's one counter; counted once per call)."""
        return await self._ctx.prompt_tokens()

    @property
    def has_tools(self) -> bool:
        return bool(self.request.tools) and self.request.tool_choice != "none"

    @property
    def has_json_schema(self) -> bool:
        return isinstance(self.request.response_format, ResponseFormatJSONSchema)

    @cached_property
    def last_user_text(self) -> str:
        for message in reversed(self.request.messages):
            if isinstance(message, UserMessage):
                return message_text(message.content)
        return ""

    @cached_property
    def tier(self) -> str | None:
        """The key's tier (set by the operator); what the caller sends only when trusted."""
        tier = self._ctx.principal.metadata.get("tier")
        if tier or not self._trust_client_tier:
            return tier if isinstance(tier, str) else None
        return self._ctx.request_headers.get(TIER_HEADER) or (self.request.metadata or {}).get(
            "tier"
        )

    async def classification(self) -> str | None:
        """The classifier's label, asked at most once per call (rules are checked in turn)."""
        if self._classifier is not None and not self._classified:
            self._classification = await self._classifier.classify(self.last_user_text, self._ctx)
            self._classified = True
        return self._classification


class Condition(Protocol):
    async def holds(self, facts: RequestFacts) -> bool: ...


@dataclass(frozen=True, slots=True)
class PromptTokensOver:
    limit: int

    async def holds(self, facts: RequestFacts) -> bool:
        return await facts.prompt_tokens() > self.limit


@dataclass(frozen=True, slots=True)
class HasTools:
    expected: bool

    async def holds(self, facts: RequestFacts) -> bool:
        return facts.has_tools == self.expected


@dataclass(frozen=True, slots=True)
class HasJSONSchema:
    expected: bool

    async def holds(self, facts: RequestFacts) -> bool:
        return facts.has_json_schema == self.expected


@dataclass(frozen=True, slots=True)
class Matches:
    pattern: TextPattern

    @classmethod
    def build(cls, pattern: str) -> Matches:
        return cls(compile_pattern(pattern))  # RE2: linear in the client's text

    async def holds(self, facts: RequestFacts) -> bool:
        return self.pattern.search(facts.last_user_text) is not None


def keywords_condition(words: list[str]) -> Matches:
    # Python's re for the lookarounds; safe: escaped literals only, nothing to backtrack into.
    alternatives = "|".join(re.escape(word) for word in words)
    return Matches(re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE))


@dataclass(frozen=True, slots=True)
class TierIs:
    tiers: frozenset[str]

    @classmethod
    def build(cls, tiers: list[str]) -> TierIs:
        return cls(frozenset(tiers))

    async def holds(self, facts: RequestFacts) -> bool:
        return facts.tier in self.tiers


@dataclass(frozen=True, slots=True)
class ClassifiedAs:
    label: str

    async def holds(self, facts: RequestFacts) -> bool:
        return await facts.classification() == self.label


# Field of `RuleCondition` → the condition it compiles to; the order is the order of
# evaluation (cheap checks first, the classifier call last).
CONDITION_BUILDERS: Mapping[str, Callable[[Any], Condition]] = MappingProxyType(
    {
        "has_tools": HasTools,
        "has_json_schema": HasJSONSchema,
        "tier": TierIs.build,
        "prompt_tokens_over": PromptTokensOver,
        "keywords": keywords_condition,
        "matches": Matches.build,
        "classified_as": ClassifiedAs,
    }
)


def compile_condition(when: RuleCondition | None) -> tuple[Condition, ...]:
    if when is None:
        return ()
    return tuple(
        build(getattr(when, name))
        for name, build in CONDITION_BUILDERS.items()
        if name in when.model_fields_set and getattr(when, name) is not None
    )


@dataclass(frozen=True, slots=True)
class CompiledRule:
    conditions: tuple[Condition, ...]
    target: str

    async def matches(self, facts: RequestFacts) -> bool:
        for condition in self.conditions:
            if not await condition.holds(facts):
                return False
        return True


class VirtualModel:
    """A public name whose rules pick the group that serves each call."""

    def __init__(self, name: str, config: VirtualModelConfig, ask: AskModel) -> None:
        self.name = name
        self.config = config
        self.rules = tuple(
            CompiledRule(compile_condition(rule.when), rule.use) for rule in config.rules
        )
        self.classifier = Classifier(config.classifier, ask) if config.classifier else None

    def facts(self, ctx: CallContext) -> RequestFacts:
        return RequestFacts(ctx, self.classifier, trust_client_tier=self.config.trust_client_tier)

    async def choose(self, facts: RequestFacts) -> str:
        for rule in self.rules:
            if await rule.matches(facts):
                return rule.target
        return self.rules[-1].target  # unreachable: config ends with a rule without `when`
