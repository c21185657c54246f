"""Providers are plugins: classes registered by name in the ``portway.providers`` entry points.

Built-in providers use the same entry point group that third-party packages use, so
adding a backend never means editing Portway.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points

from pydantic import ValidationError

from portway.config import ConfigError, ModelConfig, format_validation_error
from portway.providers.base import Provider

ENTRY_POINT_GROUP = "portway.providers"


class ProviderRegistry:
    """Maps provider names to classes; loads a class only when a model uses it."""

    def __init__(self, extra: Mapping[str, type[Provider]] | None = None) -> None:
        self._entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        self._loaded: dict[str, type[Provider]] = dict(extra or {})

    def names(self) -> list[str]:
        return sorted(set(self._entry_points) | set(self._loaded))

    def get(self, name: str) -> type[Provider]:
        if name not in self._loaded:
            entry_point = self._entry_points.get(name)
            if entry_point is None:
                known = ", ".join(self.names())
                raise ConfigError(f"unknown provider {name!r} (known: {known})")
            self._loaded[name] = entry_point.load()
        return self._loaded[name]

    def build(self, config: ModelConfig, index: int = 0) -> Provider:
        """The provider of ``models[index]``, its ``options`` checked against its type first."""
        provider = self.get(config.provider)
        try:
            provider.Options.model_validate(config.options)
        except ValidationError as exc:
            where = ("models", index, "options")
            raise ConfigError(format_validation_error(exc, "the settings", where)) from None
        return provider(config)
