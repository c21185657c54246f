"""Guardrails are plugins: classes registered by name in the ``portway.guardrails`` entry points.

The built-ins are declared in pyproject.toml like any third-party plugin; they are also
the registry's default set so a checkout run without reinstalling still has them.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points

from portway.config import ConfigError
from portway.guardrails.base import Guardrail

ENTRY_POINT_GROUP = "portway.guardrails"
BUILTINS: Mapping[str, str] = {
    "pii": "portway.guardrails.pii:PiiGuardrail",
    "secrets": "portway.guardrails.secrets:SecretsGuardrail",
    "prompt_injection": "portway.guardrails.injection:PromptInjectionGuardrail",
    "sanitize": "portway.guardrails.sanitize:SanitizeGuardrail",
}


class GuardrailRegistry:
    """Maps guardrail names to classes; loads a class only when a policy names it."""

    def __init__(self, extra: Mapping[str, type[Guardrail]] | None = None) -> None:
        self._entry_points: dict[str, EntryPoint] = {
            name: EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in BUILTINS.items()
        }
        self._entry_points.update({ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)})
        self._loaded: dict[str, Guardrail] = {}
        self._extra = dict(extra or {})

    def names(self) -> list[str]:
        return sorted(set(self._entry_points) | set(self._extra))

    def get(self, name: str) -> Guardrail:
        """The one instance of guardrail ``name`` (guardrails keep no per-call state)."""
        if name not in self._loaded:
            cls = self._extra.get(name)
            if cls is None:
                entry_point = self._entry_points.get(name)
                if entry_point is None:
                    known = ", ".join(self.names())
                    raise ConfigError(f"guardrails: unknown guardrail {name!r} (known: {known})")
                cls = entry_point.load()
            self._loaded[name] = cls()
        return self._loaded[name]
