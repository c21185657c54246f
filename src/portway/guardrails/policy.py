"""Which guardrails apply to a call: the top-level list, or the model group's own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from portway.config import GuardrailMode, GuardrailPolicy, GuardrailScope, Settings
from portway.guardrails.base import Guardrail
from portway.guardrails.registry import GuardrailRegistry


@dataclass(frozen=True, slots=True)
class ActivePolicy:
    """A guardrail instance with the mode and scope a policy gives it."""

    guardrail: Guardrail
    mode: GuardrailMode
    scope: GuardrailScope

    @property
    def on_input(self) -> bool:
        return self.scope != "output"

    @property
    def on_output(self) -> bool:
        return self.scope != "input"

    def applies_to(self, role: str | None) -> bool:
        roles = self.guardrail.roles
        return roles is None or role is None or role in roles


@dataclass(frozen=True, slots=True)
class Policies:
    """The guardrails of every model name, resolved once at start-up."""

    default: tuple[ActivePolicy, ...]
    per_model: Mapping[str, tuple[ActivePolicy, ...]]

    @classmethod
    def build(cls, settings: Settings, registry: GuardrailRegistry) -> Policies:
        """Raises ``ConfigError`` for an unknown guardrail name."""

        def resolve(policies: Sequence[GuardrailPolicy]) -> tuple[ActivePolicy, ...]:
            return tuple(
                ActivePolicy(registry.get(policy.name), policy.mode, policy.scope)
                for policy in policies
            )

        per_model: dict[str, tuple[ActivePolicy, ...]] = {}
        for model in settings.models:
            if model.guardrails is not None and model.name not in per_model:
                per_model[model.name] = resolve(model.guardrails)
        return cls(resolve(settings.guardrails), per_model)

    @property
    def any(self) -> bool:
        return bool(self.default) or any(self.per_model.values())

    def for_model(self, model: str) -> tuple[ActivePolicy, ...]:
        return self.per_model.get(model, self.default)
