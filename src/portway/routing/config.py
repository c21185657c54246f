"""Typed settings of the top-level ``router:`` mapping.

Contract: ``router`` maps a public model name to either a ``GroupRouteConfig`` (how
calls to that group of deployments are balanced, retried, failed over, broken and
degraded) or a ``VirtualModelConfig`` (an entry with ``rules``: a name that owns no
deployments and picks a group per request). The key ``"*"`` gives the defaults for
groups that have no entry of their own. Durations accept ``"30s"``, ``"500ms"``,
``"2m"``, ``"1h"`` or a number of seconds. ``check_router_references`` validates the
names the mapping refers to against the declared model groups.

A leaf: it imports nothing from ``portway`` (``portway.config``
imports it; ``tests/test_imports.py`` keeps it so).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from portway.routing.patterns import compile_pattern

DEFAULT_ROUTE_KEY = "*"
# The strategies a route may name; ``routing.strategies.STRATEGIES`` implements each.
STRATEGY_NAMES = ("weighted-random", "least-busy", "lowest-latency", "cheapest", "priority")

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?")
_UNIT_SECONDS = {None: 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object) -> float:
    """Seconds from ``"30s"``, ``"500ms"``, ``"2m"``, ``"1h"`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 500ms or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("expected a duration such as 30s, 500ms or a number of seconds")
    if seconds <= 0 or seconds != seconds or seconds == float("inf"):
        raise ValueError("a duration must be a positive, finite number of seconds")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackoffConfig(_Strict):
    """Exponential backoff with full jitter between retries on the same deployment."""

    base: Duration = 0.25
    max: Duration = 8.0
    # The longest upstream `retry-after` the router waits out instead of giving up on
    # the group (bounded by the request's deadline as well).
    retry_after_cap: Duration = 30.0


class BreakerConfig(_Strict):
    """When a deployment's circuit opens, for how long, and how it is probed again."""

    enabled: bool = True
    consecutive_failures: int = Field(default=5, ge=1)
    failure_rate: float = Field(default=0.5, gt=0, le=1)
    min_requests: int = Field(default=20, ge=1)
    window: Duration = 30.0
    cooldown: Duration = 10.0
    cooldown_multiplier: float = Field(default=2.0, ge=1)
    max_cooldown: Duration = 300.0
    # A 429 without retry-after takes the deployment out for this long.
    rate_limit_cooldown: Duration = 1.0
    # A half-open probe holds the single probe slot at most this long (a crashed
    # process must not keep the circuit half-open forever).
    probe_timeout: Duration = 60.0


class DegradeConfig(_Strict):
    """What a client gets when every deployment (and fallback) is unavailable.

    Tried in order: a stale cached answer (``stale: true``), the static ``message``,
    else a 503 with ``retry-after``.
    """

    message: str | None = Field(default=None, min_length=1)
    stale: bool = False
    retry_after: Duration | None = None


class HealthCheckConfig(_Strict):
    """Active health checks: a one-token chat request per deployment every ``interval``."""

    interval: Duration = 30.0
    timeout: Duration = 10.0


class GroupRouteConfig(_Strict):
    """How calls to one model group are routed."""

    strategy: str = "weighted-random"
    # lowest-latency: share of calls sent to a random deployment to keep measuring.
    exploration: float = Field(default=0.1, ge=0, le=1)
    retries: int = Field(default=2, ge=0, le=20)
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)
    # Per attempt; unset means the deployment's own `timeout`.
    timeout: Duration | None = None
    # Streams: the longest wait for the first chunk of an attempt (default `timeout`).
    first_byte_timeout: Duration | None = None
    # All attempts and fallbacks together, up to the response (or a stream's first
    # chunk). A request may set its own with the `x-portway-timeout` header.
    deadline: Duration | None = None
    fallbacks: list[str] = Field(default_factory=list)
    context_window_fallbacks: list[str] = Field(default_factory=list)
    content_policy_fallbacks: list[str] = Field(default_factory=list)
    degrade: DegradeConfig | None = None
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    health_check: HealthCheckConfig | None = None
    # A text stream cut after content reached the client continues on a deployment that
    # can continue an assistant prefix (`prefill`), at most `max_stream_resumes` times.
    stream_resume: bool = True
    max_stream_resumes: int = Field(default=2, ge=0, le=10)

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, name: str) -> str:
        if name not in STRATEGY_NAMES:
            known = ", ".join(sorted(STRATEGY_NAMES))
            raise ValueError(f"unknown strategy {name!r} (known: {known})")
        return name


class RuleCondition(_Strict):
    """Conditions of one rule; every condition given must hold."""

    prompt_tokens_over: int | None = Field(default=None, ge=0)
    has_tools: bool | None = None
    has_json_schema: bool | None = None
    # An RE2 regular expression searched in the last user message (add (?i) to ignore
    # case); linear-time, so no backreferences or lookarounds.
    matches: str | None = Field(default=None, min_length=1)
    # Any of these words in the last user message (case-insensitive, whole words).
    keywords: list[str] | None = Field(default=None, min_length=1)
    # The caller's tier: its virtual key's metadata `tier`; the `x-portway-tier` header
    # and the request's `metadata.tier` count only with `trust_client_tier: true`.
    tier: list[str] | None = Field(default=None, min_length=1)
    # The virtual model's classifier labelled the request so.
    classified_as: Literal["simple", "complex"] | None = None

    @field_validator("tier", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("matches")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            compile_pattern(pattern)  # PatternError is a ValueError: a config error
        return pattern

    @model_validator(mode="after")
    def _not_empty(self) -> RuleCondition:
        if not self.model_fields_set:
            raise ValueError("give at least one condition, or leave out `when` for the default")
        return self


class RoutingRule(_Strict):
    when: RuleCondition | None = None
    use: str = Field(min_length=1)


class ClassifierConfig(_Strict):
    """A small model asked whether a request is simple or complex."""

    model: str = Field(min_length=1)
    timeout: Duration = 5.0
    max_chars: int = Field(default=2000, ge=1)
    prompt: str = (
        "Classify the user's request. Answer with exactly one word: `simple` for "
        "chit-chat, lookups and short factual answers; `complex` for multi-step "
        "reasoning, maths, code or long-form writing."
    )


class VirtualModelConfig(_Strict):
    """A public name without deployments: ordered ``rules`` pick a group per request."""

    rules: list[RoutingRule] = Field(min_length=1)
    classifier: ClassifierConfig | None = None
    description: str | None = None
    # Whether a client may state its own tier (`x-portway-tier`, `metadata.tier`) when its
    # key has none; off by default, so a tier rule cannot be reached by just claiming it.
    trust_client_tier: bool = False

    @model_validator(mode="after")
    def _ends_with_default(self) -> VirtualModelConfig:
        if self.rules[-1].when is not None:
            raise ValueError("the last rule must have no `when`: it is the default route")
        if self.classifier is None and any(
            rule.when is not None and rule.when.classified_as is not None for rule in self.rules
        ):
            raise ValueError("a rule uses `classified_as` but no `classifier` is configured")
        return self


def _entry_kind(value: Any) -> str:
    # Tags contain "=" so that error locations can leave them out (as api/wire.py does).
    if isinstance(value, dict):
        return "kind=virtual" if "rules" in value else "kind=group"
    return "kind=virtual" if isinstance(value, VirtualModelConfig) else "kind=group"


RouteEntry = Annotated[
    Annotated[GroupRouteConfig, Tag("kind=group")]
    | Annotated[VirtualModelConfig, Tag("kind=virtual")],
    Discriminator(_entry_kind),
]


def check_router_references(
    router: Mapping[str, GroupRouteConfig | VirtualModelConfig], groups: Collection[str]
) -> None:
    """Raise ``ValueError`` naming the key when ``router`` refers to an unknown model group."""

    def require_group(where: str, name: str) -> None:
        if name not in groups:
            raise ValueError(f"{where}: {name!r} is not a declared model group")

    for key, entry in router.items():
        if isinstance(entry, VirtualModelConfig):
            if key in groups:
                raise ValueError(
                    f"router.{key}: a virtual model (with `rules`) cannot share its name "
                    "with a declared model"
                )
            for index, rule in enumerate(entry.rules):
                require_group(f"router.{key}.rules[{index}].use", rule.use)
            if entry.classifier is not None:
                require_group(f"router.{key}.classifier.model", entry.classifier.model)
            continue
        if key != DEFAULT_ROUTE_KEY:
            require_group(f"router.{key}", key)
        for field in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
            for index, name in enumerate(getattr(entry, field)):
                require_group(f"router.{key}.{field}[{index}]", name)
                if name == key:
                    raise ValueError(
                        f"router.{key}.{field}[{index}]: a group cannot fall back to itself"
                    )
