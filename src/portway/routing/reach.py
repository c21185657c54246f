"""Which model groups a call to a public name may end up in (resolved once at start-up).

Contract: ``reachable_groups(name, routes, groups)`` lists, in order and without
repeats, every group the router may send a call for ``name`` to: for a virtual model
each rule's ``use`` group and, for every group, the group itself followed by its
route's ``fallbacks``, ``context_window_fallbacks`` and ``content_policy_fallbacks``
(the router follows the primary group's lists only, never a fallback's own). Unknown
names give an empty tuple. Accounting uses it to reserve for the dearest deployment a
call can reach; it must stay in step with ``Router._route``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from portway.routing.config import DEFAULT_ROUTE_KEY, GroupRouteConfig, VirtualModelConfig

Routes = Mapping[str, GroupRouteConfig | VirtualModelConfig]

FALLBACK_FIELDS = ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks")


def route_of(name: str, routes: Routes) -> GroupRouteConfig:
    """The route a group is called with: its own entry, else ``"*"``, else the defaults."""
    own = routes.get(name)
    if isinstance(own, GroupRouteConfig):
        return own
    default = routes.get(DEFAULT_ROUTE_KEY)
    return default if isinstance(default, GroupRouteConfig) else GroupRouteConfig()


def _group_reach(name: str, routes: Routes, groups: Collection[str]) -> list[str]:
    route = route_of(name, routes)
    reach = [name]
    for field in FALLBACK_FIELDS:
        reach.extend(other for other in getattr(route, field) if other in groups)
    return reach


def reachable_groups(name: str, routes: Routes, groups: Collection[str]) -> tuple[str, ...]:
    entry = routes.get(name)
    if isinstance(entry, VirtualModelConfig):
        primaries = [rule.use for rule in entry.rules if rule.use in groups]
    elif name in groups:
        primaries = [name]
    else:
        return ()
    reach: dict[str, None] = {}
    for primary in primaries:
        for group in _group_reach(primary, routes, groups):
            reach.setdefault(group)
    return tuple(reach)


def public_names(routes: Routes, groups: Collection[str]) -> list[str]:
    """Every name a client may call: the groups and the virtual models."""
    virtual = [name for name, entry in routes.items() if isinstance(entry, VirtualModelConfig)]
    return [*groups, *virtual]
