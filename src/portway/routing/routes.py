"""The router's routes: which groups a public name may be served by, and in what order.

Contract: built once from the ``router:`` settings and the declared model groups.
``route(group)`` is the group's own entry, else ``"*"``, else the defaults.
``targets(name)`` are the groups a name is sent to first: a virtual model's rule
targets, a group itself (unknown names: none). ``fallbacks(group, kind)`` are the
groups its route lists under ``kind`` (``fallbacks``, ``context_window_fallbacks``,
``content_policy_fallbacks``), never the group itself. ``chain(name)`` lists, in order
and without repeats, every group a call for ``name`` may end up in: each target
followed by its fallbacks of every kind (a fallback's own lists are never followed).
The router routes by these answers and accounting bounds a call's cost by ``chain``, so
the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Literal

from portway.routing.config import DEFAULT_ROUTE_KEY, GroupRouteConfig, VirtualModelConfig

FallbackKind = Literal["fallbacks", "context_window_fallbacks", "content_policy_fallbacks"]
FALLBACK_KINDS: tuple[FallbackKind, ...] = (
    "fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
)


class RouteTable:
    """The ``router:`` settings resolved against the declared groups."""

    def __init__(
        self,
        routes: Mapping[str, GroupRouteConfig | VirtualModelConfig],
        groups: Collection[str],
    ) -> None:
        default = routes.get(DEFAULT_ROUTE_KEY)
        self._default = default if isinstance(default, GroupRouteConfig) else GroupRouteConfig()
        self._routes = routes
        self.groups: tuple[str, ...] = tuple(groups)
        self.virtual: Mapping[str, VirtualModelConfig] = MappingProxyType(
            {name: entry for name, entry in routes.items() if isinstance(entry, VirtualModelConfig)}
        )
        self._chains = {name: self._chain(name) for name in self.names()}

    def names(self) -> list[str]:
        """Every name a client may call: the groups and the virtual models."""
        return [*self.groups, *self.virtual]

    def route(self, group: str) -> GroupRouteConfig:
        own = self._routes.get(group)
        return own if isinstance(own, GroupRouteConfig) else self._default

    def targets(self, name: str) -> tuple[str, ...]:
        virtual = self.virtual.get(name)
        if virtual is not None:
            return tuple(rule.use for rule in virtual.rules if rule.use in self.groups)
        return (name,) if name in self.groups else ()

    def fallbacks(self, group: str, kind: FallbackKind = "fallbacks") -> tuple[str, ...]:
        # A "*" default may list the group itself among its fallbacks: skip it there.
        listed: list[str] = getattr(self.route(group), kind)
        return tuple(name for name in listed if name != group and name in self.groups)

    def chain(self, name: str) -> tuple[str, ...]:
        return self._chains.get(name, ())

    def _chain(self, name: str) -> tuple[str, ...]:
        chain: dict[str, None] = {}
        for target in self.targets(name):
            chain.setdefault(target)
            for kind in FALLBACK_KINDS:
                for group in self.fallbacks(target, kind):
                    chain.setdefault(group)
        return tuple(chain)
