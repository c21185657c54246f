"""Before a call: how many prompt tokens it has and how many output tokens it may produce."""

from __future__ import annotations

from portway.accounting.tokenizer import TokenizerService
from portway.config import AccountingConfig
from portway.errors import PortwayError
from portway.pipeline.base import CallContext
from portway.routing.catalog import Deployment, ModelCatalog


class UsageEstimator:
    """Counts with the tokenizer of the model group's first deployment, once per call."""

    def __init__(
        self, tokenizer: TokenizerService, catalog: ModelCatalog, config: AccountingConfig
    ) -> None:
        self.tokenizer = tokenizer
        self.catalog = catalog
        self._config = config

    def _deployment(self, model: str) -> Deployment | None:
        try:
            return self.catalog.group(model)[0]
        except PortwayError:
            return None  # unknown model: the router answers 404

    async def prompt_tokens(self, ctx: CallContext) -> int:
        if ctx.prompt_tokens_estimate is None:
            deployment = self._deployment(ctx.model)
            if deployment is None:
                ctx.prompt_tokens_estimate = 0
            else:
                config = deployment.config
                tokens, _exact = await self.tokenizer.count_request(
                    config.provider, config.upstream_model, ctx.request
                )
                ctx.prompt_tokens_estimate = tokens
        return ctx.prompt_tokens_estimate

    def max_output_tokens(self, ctx: CallContext) -> int:
        """The client's cap, else the model's, else ``accounting.default_max_output_tokens``."""
        requested = ctx.request.max_output_tokens
        deployment = self._deployment(ctx.model)
        model_cap = deployment.config.max_output_tokens if deployment else None
        cap = requested or model_cap or self._config.default_max_output_tokens
        return cap * (ctx.request.n or 1)

    async def output_tokens(self, ctx: CallContext, text: str) -> int:
        """Count generated text when the provider reported no usage."""
        if not text:
            return 0
        deployment = None
        for candidate in self.catalog.deployments:
            if candidate.id == ctx.deployment:
                deployment = candidate
        deployment = deployment or self._deployment(ctx.model)
        if deployment is None:
            return 0
        config = deployment.config
        return await self.tokenizer.count_text(config.provider, config.upstream_model, text)
