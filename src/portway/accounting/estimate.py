"""Before a call: how many prompt tokens it has, how many it may produce, what it may cost.

Contract: a public name (a model group or a virtual model such as ``auto``) reaches the
deployments of every group the router may send it to: the router's ``chain(name)`` (a
virtual model's rule targets, each target's fallbacks), asked once at start-up, never
worked out here. Before the call, the prompt is counted
with every distinct tokenizer among them and the largest count is kept; the output cap
is the client's (times ``n``), else the largest ``Deployment.output_cap`` among them
(``max_output_tokens``, else ``accounting.default_max_output_tokens``): the very cap the
router sends upstream when the client gave none, so no answer can outgrow its hold. The
worst-case cost is the most any one of them could charge for that prompt and cap.
Unknown names count 0 (the router answers 404 later). After the call, a missing usage
is counted with the tokenizer of the deployment that served it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from portway.accounting.pricing import PricingCatalog
from portway.accounting.tokenizer import TokenizerService
from portway.config import AccountingConfig
from portway.pipeline.base import CallContext
from portway.protocol.completions import CompletionRequest
from portway.routing.catalog import Deployment, ModelCatalog


class Routes(Protocol):
    """What accounting asks the router (``Router``, ``RouteTable``) about its routes."""

    def names(self) -> Sequence[str]: ...

    def chain(self, name: str) -> tuple[str, ...]: ...


def generations(ctx: CallContext) -> int:
    """How many completions the call may generate (a text completion's prompts times best_of)."""
    request = ctx.request
    if isinstance(request, CompletionRequest):
        return request.generations
    return request.n or 1  # type: ignore[union-attr]


@dataclass(frozen=True, slots=True)
class Reach:
    """The deployments a public name may be served by, resolved at start-up."""

    deployments: tuple[Deployment, ...]
    # One deployment per distinct tokenizer among them: the prompt is counted with each.
    counters: tuple[Deployment, ...]
    # The largest ``Deployment.output_cap`` among them.
    output_cap: int


class UsageEstimator:
    """Counts a call's prompt once (worst tokenizer of its reach) and bounds its cost."""

    def __init__(
        self,
        tokenizer: TokenizerService,
        catalog: ModelCatalog,
        config: AccountingConfig,
        routes: Routes,
    ) -> None:
        self.tokenizer = tokenizer
        self.catalog = catalog
        self._config = config
        self._by_id = {deployment.id: deployment for deployment in catalog.deployments}
        self.reach: Mapping[str, Reach] = {
            name: self._resolve(routes.chain(name)) for name in routes.names()
        }
        # With one tokenizer everywhere, the estimate made before the call is also the
        # count of whichever deployment served it.
        self._one_tokenizer = (
            len({tokenizer.kind(d.config.upstream_model) for d in catalog.deployments}) <= 1
        )

    def _resolve(self, groups: tuple[str, ...]) -> Reach:
        deployments = tuple(d for group in groups for d in self.catalog.group(group))
        counters: dict[str, Deployment] = {}
        for deployment in deployments:
            counters.setdefault(self.tokenizer.kind(deployment.config.upstream_model), deployment)
        default = self._config.default_max_output_tokens
        cap = max((d.output_cap for d in deployments), default=default)
        return Reach(deployments, tuple(counters.values()), cap)

    def deployments_of(self, model: str) -> tuple[Deployment, ...]:
        reach = self.reach.get(model)
        return reach.deployments if reach is not None else ()

    async def count_prompt(self, ctx: CallContext) -> int:
        """The prompt's size by the most generous tokenizer the call may meet: the one
        prompt counter of the pipeline (``CallContext.prompt_tokens`` keeps its answer)."""
        reach = self.reach.get(ctx.model)
        tokens = 0
        for deployment in reach.counters if reach is not None else ():
            count, _exact = await self.tokenizer.count_request(
                deployment.config.provider, deployment.config.upstream_model, ctx.request
            )
            tokens = max(tokens, count)
        return tokens

    def max_output_tokens(self, ctx: CallContext) -> int:
        """The client's cap, else the largest cap of the reach, times ``n`` (embeddings: 0)."""
        if ctx.operation == "embed":
            return 0
        requested = ctx.request.max_output_tokens
        if requested is None:
            reach = self.reach.get(ctx.model)
            requested = reach.output_cap if reach else self._config.default_max_output_tokens
        return requested * generations(ctx)

    async def worst_case_nanos(self, ctx: CallContext, pricing: PricingCatalog) -> int:
        """The most the call may cost on any deployment it can reach (before the call)."""
        prompt = await ctx.prompt_tokens()
        worst = 0
        if ctx.operation == "embed":  # input tokens only: an embedding generates none
            for deployment in self.deployments_of(ctx.model):
                price = pricing.for_deployment(deployment.id)
                worst = max(worst, price.worst_case_nanos(prompt, 0))
            return worst
        requested = ctx.request.max_output_tokens
        choices = generations(ctx)
        for deployment in self.deployments_of(ctx.model):
            # Without a client cap the router sends the deployment's own (Router._capped).
            cap = requested or deployment.output_cap
            price = pricing.for_deployment(deployment.id)
            worst = max(worst, price.worst_case_nanos(prompt, cap * choices))
        return worst

    def _served_by(self, ctx: CallContext) -> Deployment | None:
        if ctx.deployment is not None and ctx.deployment in self._by_id:
            return self._by_id[ctx.deployment]
        deployments = self.deployments_of(ctx.model)
        return deployments[0] if deployments else None

    async def served_prompt_tokens(self, ctx: CallContext) -> int:
        """The prompt counted as the deployment that served it counts (no usage reported)."""
        deployment = self._served_by(ctx)
        if deployment is None or (self._one_tokenizer and ctx.prompt_counted()):
            return await ctx.prompt_tokens()
        config = deployment.config
        tokens, _exact = await self.tokenizer.count_request(
            config.provider, config.upstream_model, ctx.request
        )
        return tokens

    async def output_tokens(self, ctx: CallContext, text: str) -> int:
        """Count generated text when the provider reported no usage."""
        deployment = self._served_by(ctx)
        if not text or deployment is None:
            return 0
        config = deployment.config
        return await self.tokenizer.count_text(config.provider, config.upstream_model, text)
