"""The pricing catalog: USD per million tokens per deployment, and the cost of a call.

Contract: a deployment's price is its ``pricing`` from config when set, else the built-in
entry whose name is the longest prefix of its upstream model id (so dated variants such as
``gpt-4o-2024-08-06`` match ``gpt-4o``), else zero (local models; unknown models are
logged once at start-up). Costs are integer nano-dollars (1e-9 USD).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from portway.config import ModelConfig
from portway.routing.catalog import Deployment

logger = logging.getLogger(__name__)

NANOS_PER_USD = 1_000_000_000
_NANOS_PER_TOKEN_PER_USD_PER_MTOK = NANOS_PER_USD // 1_000_000  # $1/1M tokens = 1000 n$/token


@dataclass(frozen=True, slots=True)
class Price:
    """USD per one million tokens; ``cached_input`` defaults to ``input``."""

    input: float = 0.0
    output: float = 0.0
    cached_input: float | None = None

    @property
    def is_free(self) -> bool:
        return self.input == 0 and self.output == 0 and not self.cached_input

    def cost_nanos(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> int:
        """The cost of real usage; cached prompt tokens are billed at the cached rate."""
        cached = min(max(cached_tokens, 0), prompt_tokens)
        cached_rate = self.input if self.cached_input is None else self.cached_input
        usd_millionths = (
            (prompt_tokens - cached) * self.input
            + cached * cached_rate
            + completion_tokens * self.output
        )
        return round(usd_millionths * _NANOS_PER_TOKEN_PER_USD_PER_MTOK)

    def worst_case_nanos(self, prompt_tokens: int, max_output_tokens: int) -> int:
        """Upper bound before the call: no cache discount, every output token used."""
        return self.cost_nanos(prompt_tokens, max_output_tokens)


FREE = Price()

# List prices (USD / 1M tokens: input, output, cached input) of common models.
BUILTIN_PRICES: Mapping[str, Price] = MappingProxyType(
    {
        "gpt-5": Price(1.25, 10.00, 0.125),
        "gpt-5-mini": Price(0.25, 2.00, 0.025),
        "gpt-5-nano": Price(0.05, 0.40, 0.005),
        "gpt-4.1": Price(2.00, 8.00, 0.50),
        "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
        "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
        "gpt-4o": Price(2.50, 10.00, 1.25),
        "gpt-4o-mini": Price(0.15, 0.60, 0.075),
        "chatgpt-4o-latest": Price(5.00, 15.00),
        "gpt-4-turbo": Price(10.00, 30.00),
        "gpt-4": Price(30.00, 60.00),
        "gpt-3.5-turbo": Price(0.50, 1.50),
        "o1": Price(15.00, 60.00, 7.50),
        "o1-mini": Price(1.10, 4.40, 0.55),
        "o3": Price(2.00, 8.00, 0.50),
        "o3-mini": Price(1.10, 4.40, 0.55),
        "o4-mini": Price(1.10, 4.40, 0.275),
        "text-embedding-3-small": Price(0.02, 0.0),
        "text-embedding-3-large": Price(0.13, 0.0),
        "text-embedding-ada-002": Price(0.10, 0.0),
        "claude-opus-4-1": Price(15.00, 75.00, 1.50),
        "claude-opus-4": Price(15.00, 75.00, 1.50),
        "claude-sonnet-4-5": Price(3.00, 15.00, 0.30),
        "claude-sonnet-4": Price(3.00, 15.00, 0.30),
        "claude-3-7-sonnet": Price(3.00, 15.00, 0.30),
        "claude-3-5-sonnet": Price(3.00, 15.00, 0.30),
        "claude-haiku-4-5": Price(1.00, 5.00, 0.10),
        "claude-3-5-haiku": Price(0.80, 4.00, 0.08),
        "claude-3-haiku": Price(0.25, 1.25, 0.03),
    }
)


def builtin_price(model: str) -> Price | None:
    """The built-in price whose name is the longest prefix of ``model``."""
    base = model.rsplit("/", 1)[-1].lower()
    best: str | None = None
    for name in BUILTIN_PRICES:
        if base.startswith(name) and (best is None or len(name) > len(best)):
            best = name
    return BUILTIN_PRICES[best] if best is not None else None


def price_of(config: ModelConfig, billed: bool = True) -> Price | None:
    """The configured or built-in price of a deployment (None: unknown); an unbilled
    provider's (``Provider.billed``) is free unless configured."""
    if config.pricing is not None:
        return Price(config.pricing.input, config.pricing.output, config.pricing.cached_input)
    if not billed:
        return FREE
    return builtin_price(config.upstream_model)


class PricingCatalog:
    """Prices per deployment id, resolved once at start-up."""

    def __init__(self, deployments: Iterable[Deployment]) -> None:
        self._by_deployment: dict[str, Price] = {}
        self._worst_by_model: dict[str, Price] = {}
        self._first_by_model: dict[str, Price] = {}
        for deployment in deployments:
            deployment_id, config = deployment.id, deployment.config
            price = price_of(config, deployment.provider.billed)
            if price is None:
                logger.warning(
                    "no price known for deployment %s (%s): its cost is recorded as 0; "
                    "set `pricing` on the model to fix",
                    deployment_id,
                    config.upstream_model,
                )
                price = FREE
            self._by_deployment[deployment_id] = price
            self._first_by_model.setdefault(config.name, price)
            worst = self._worst_by_model.get(config.name, FREE)
            self._worst_by_model[config.name] = Price(
                max(worst.input, price.input), max(worst.output, price.output)
            )

    def for_deployment(self, deployment_id: str | None) -> Price:
        if deployment_id is None:
            return FREE
        return self._by_deployment.get(deployment_id, FREE)

    def for_call(self, deployment_id: str | None, model: str) -> Price:
        """The price of the deployment that served a call, else the model's first one."""
        if deployment_id is not None and deployment_id in self._by_deployment:
            return self._by_deployment[deployment_id]
        return self._first_by_model.get(model, FREE)

    def worst_for_model(self, model: str) -> Price:
        """The dearest price among a model's deployments: what a reservation must assume."""
        return self._worst_by_model.get(model, FREE)


def usd(nanos: int) -> float:
    return nanos / NANOS_PER_USD


def nanos(usd_amount: float) -> int:
    return round(usd_amount * NANOS_PER_USD)
