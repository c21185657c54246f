"""Which guardrails apply to a call: the API key's own list (its ``metadata.guardrails``),
else the model group's own, else the top-level list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import TypeAdapter, ValidationError

from portway.config import (
    ConfigError,
    GuardrailMode,
    GuardrailPolicy,
    GuardrailScope,
    Settings,
    format_validation_error,
)
from portway.errors import InvalidRequestError
from portway.guardrails.base import Guardrail
from portway.guardrails.registry import GuardrailRegistry
from portway.security.principal import Principal

# A virtual key's metadata may carry its own guardrails list (set by an admin).
KEY_METADATA = "guardrails"
_POLICY_LIST = TypeAdapter(list[GuardrailPolicy])


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
    registry: GuardrailRegistry

    @classmethod
    def build(cls, settings: Settings, registry: GuardrailRegistry) -> Policies:
        """Raises ``ConfigError`` for an unknown guardrail name."""
        per_model: dict[str, tuple[ActivePolicy, ...]] = {}
        for model in settings.models:
            if model.guardrails is not None and model.name not in per_model:
                per_model[model.name] = _resolve(model.guardrails, registry)
        return cls(_resolve(settings.guardrails, registry), per_model, registry)

    def for_call(self, model: str, principal: Principal) -> tuple[ActivePolicy, ...]:
        raw = principal.metadata.get(KEY_METADATA)
        if raw is None:
            return self.per_model.get(model, self.default)
        # An admin wrote it into the key: the caller cannot fix it, but it is not a crash.
        try:
            return _resolve(_POLICY_LIST.validate_python(raw), self.registry)
        except ValidationError as exc:
            message = format_validation_error(exc, "the API key's metadata", (KEY_METADATA,))
        except ConfigError as exc:
            message = f"the API key's metadata: {exc}"
        raise InvalidRequestError(message, param="metadata.guardrails")


def _resolve(
    policies: Sequence[GuardrailPolicy], registry: GuardrailRegistry
) -> tuple[ActivePolicy, ...]:
    return tuple(
        ActivePolicy(registry.get(policy.name).configured(policy.options), policy.mode, policy.scope)
        for policy in policies
    )
