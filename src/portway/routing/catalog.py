"""The model catalog: public model names and the deployments that serve them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from portway.config import AccountingConfig, ModelConfig
from portway.errors import ModelNotFoundError
from portway.providers.base import Provider
from portway.providers.registry import ProviderRegistry

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Deployment:
    """One configured backend for a public model name."""

    id: str
    config: ModelConfig
    provider: Provider
    # The most output tokens one choice may produce when the client sets no cap: sent
    # upstream by the router and assumed by budget holds and rate-limit estimates.
    output_cap: int = AccountingConfig().default_max_output_tokens

    @property
    def name(self) -> str:
        return self.config.name


class ModelCatalog:
    """Public model names → their deployments, in declaration order."""

    def __init__(self, deployments: Iterable[Deployment]) -> None:
        self.deployments = list(deployments)
        self._groups: dict[str, list[Deployment]] = {}
        for deployment in self.deployments:
            self._groups.setdefault(deployment.name, []).append(deployment)

    @classmethod
    def from_configs(
        cls,
        configs: Iterable[ModelConfig],
        registry: ProviderRegistry,
        accounting: AccountingConfig | None = None,
    ) -> ModelCatalog:
        default_cap = (accounting or AccountingConfig()).default_max_output_tokens
        deployments = []
        counts: dict[str, int] = {}
        for position, config in enumerate(configs):
            index = counts.get(config.name, 0)
            counts[config.name] = index + 1
            deployment_id = config.name if index == 0 else f"{config.name}#{index}"
            provider = registry.build(config, position)
            cap = config.max_output_tokens or provider.default_output_cap or default_cap
            deployments.append(Deployment(deployment_id, config, provider, cap))
        return cls(deployments)

    def names(self) -> list[str]:
        return list(self._groups)

    def __contains__(self, name: str) -> bool:
        return name in self._groups

    def group(self, name: str) -> list[Deployment]:
        group = self._groups.get(name)
        if group is None:
            raise ModelNotFoundError(name)
        return group

    async def start(self) -> None:
        await asyncio.gather(*(d.provider.start() for d in self.deployments))

    async def close(self) -> None:
        results = await asyncio.gather(
            *(d.provider.close() for d in self.deployments), return_exceptions=True
        )
        for deployment, result in zip(self.deployments, results, strict=True):
            if isinstance(result, BaseException):
                logger.warning("closing deployment %s failed: %r", deployment.id, result)

    async def ready(self) -> dict[str, bool]:
        states = await asyncio.gather(*(d.provider.ready() for d in self.deployments))
        return {d.id: state for d, state in zip(self.deployments, states, strict=True)}
