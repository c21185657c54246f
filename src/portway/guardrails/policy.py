"""Which guardrails apply to a call: the request's own list (header ``x-portway-guardrails``
or ``metadata.portway_guardrails``, JSON, only for a key whose metadata has
``guardrails_per_request: true`` or the master key), else the API key's own list (its
``metadata.guardrails``), else the model group's own, else the top-level list."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from portway.config import (
    ConfigError,
    GuardrailMode,
    GuardrailPolicy,
    GuardrailScope,
    Settings,
    format_validation_error,
)
from portway.errors import InvalidRequestError, PermissionDeniedError
from portway.guardrails.base import Guardrail
from portway.guardrails.registry import GuardrailRegistry
from portway.security.principal import Principal

# A virtual key's metadata may carry its own guardrails list (set by an admin).
KEY_METADATA = "guardrails"
# A request may carry its own list where its key allows it.
REQUEST_HEADER = "x-portway-guardrails"
REQUEST_METADATA = "portway_guardrails"
KEY_ALLOWS_REQUEST = "guardrails_per_request"
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
class RequestedPolicies:
    """A request's own guardrails list (JSON text) and where it came from (for errors)."""

    raw: str
    param: str

    @classmethod
    def of(cls, headers: Mapping[str, str], request: Any) -> RequestedPolicies | None:
        header = headers.get(REQUEST_HEADER)
        if header is not None:
            return cls(header, REQUEST_HEADER)
        metadata = getattr(request, "metadata", None)
        if isinstance(metadata, Mapping) and isinstance(metadata.get(REQUEST_METADATA), str):
            return cls(metadata[REQUEST_METADATA], f"metadata.{REQUEST_METADATA}")
        return None


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

    def for_call(
        self, model: str, principal: Principal, requested: RequestedPolicies | None = None
    ) -> tuple[ActivePolicy, ...]:
        if requested is not None:
            return self._requested(principal, requested)
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

    def _requested(
        self, principal: Principal, requested: RequestedPolicies
    ) -> tuple[ActivePolicy, ...]:
        if not (principal.is_admin or principal.metadata.get(KEY_ALLOWS_REQUEST) is True):
            raise PermissionDeniedError(
                "This API key may not choose its guardrails per request (an admin allows it "
                f"with the key's metadata `{KEY_ALLOWS_REQUEST}: true`).",
                param=requested.param,
                code="guardrails_not_allowed",
            )
        try:
            raw = json.loads(requested.raw)
            return _resolve(_POLICY_LIST.validate_python(raw), self.registry)
        except json.JSONDecodeError as exc:
            message = f"{requested.param} is not JSON: {exc.msg}"
        except ValidationError as exc:
            message = format_validation_error(exc, requested.param, ())
        except ConfigError as exc:
            message = f"{requested.param}: {exc}"
        raise InvalidRequestError(message, param=requested.param)


def _resolve(
    policies: Sequence[GuardrailPolicy], registry: GuardrailRegistry
) -> tuple[ActivePolicy, ...]:
    return tuple(
        ActivePolicy(
            registry.get(policy.name).configured(policy.options), policy.mode, policy.scope
        )
        for policy in policies
    )
