"""Which context strategy a chat call gets: its header, else its key's, else its group's.

Contract: ``x-portway-context`` (``off|truncate|middle-out|summarize|retrieve|fallback|
error``) wins; then the virtual key's ``metadata.context_strategy``; then the group's
``context.strategy`` in the config; else ``off`` (OpenAI's behaviour: the prompt goes as
sent). An unknown name is a 400, never a silent ``off``. The group's
``reserve_output_tokens`` and summarizer settings apply whoever chose the strategy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import get_args

from portway.config import ContextConfig, ContextStrategyName, ModelConfig
from portway.errors import InvalidRequestError
from portway.pipeline.base import CallContext

CONTEXT_HEADER = "x-portway-context"
# The prompt's tokens before and after fitting ("1234->800").
TOKENS_HEADER = "x-portway-context-tokens"
KEY_METADATA = "context_strategy"
STRATEGIES: frozenset[str] = frozenset(get_args(ContextStrategyName))


@dataclass(frozen=True, slots=True)
class Choice:
    strategy: str
    reserve_output_tokens: int | None = None
    # summarize / retrieve: the group's settings (``summarizer_model`` None: the group).
    config: ContextConfig = field(default_factory=ContextConfig)


def _checked(value: str, source: str) -> str:
    strategy = value.strip().lower()
    if strategy not in STRATEGIES:
        raise InvalidRequestError(
            f"Unknown context strategy {value!r} ({source}); use one of "
            f"{', '.join(sorted(STRATEGIES))}.",
            param=CONTEXT_HEADER,
        )
    return strategy


class ContextPolicy:
    """The per-group settings, read once from the model entries."""

    def __init__(self, groups: Mapping[str, ContextConfig]) -> None:
        self._groups = dict(groups)

    @classmethod
    def from_models(cls, models: Iterable[ModelConfig]) -> ContextPolicy:
        groups: dict[str, ContextConfig] = {}
        for model in models:
            if model.context is not None:
                groups.setdefault(model.name, model.context)
        return cls(groups)

    @property
    def groups(self) -> Mapping[str, ContextConfig]:
        """Each group's settings (groups that set none are left out)."""
        return self._groups

    def choose(self, ctx: CallContext) -> Choice:
        group = self._groups.get(ctx.model, ContextConfig())
        header = ctx.request_headers.get(CONTEXT_HEADER)
        if header is not None:
            strategy = _checked(header, f"header {CONTEXT_HEADER}")
        elif isinstance(keyed := ctx.principal.metadata.get(KEY_METADATA), str):
            strategy = _checked(keyed, f"the API key's metadata.{KEY_METADATA}")
        else:
            strategy = group.strategy
        return Choice(strategy, group.reserve_output_tokens, group)
