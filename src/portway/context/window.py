"""The context window a public name must fit: the smallest among the deployments it
can reach (the estimator's ``reach``, i.e. the router's ``chain``)."""

from __future__ import annotations

from collections.abc import Iterable

from portway.context.catalog import known_window
from portway.routing.catalog import Deployment


def window_of(deployment: Deployment) -> int | None:
    """A deployment's window: its config's ``context_window``, else its provider's (a
    local GGUF's ``n_ctx``), else the built-in catalog's for a well-known model id."""
    config = deployment.config
    return (
        config.context_window
        or deployment.provider.capabilities.context_window
        or known_window(config.upstream_model)
    )


def smallest_window(deployments: Iterable[Deployment]) -> int | None:
    """The smallest known window among ``deployments`` (None: none is known)."""
    return min((w for d in deployments if (w := window_of(d))), default=None)


def output_reserve(window: int, explicit: int | None, requested: int) -> int:
    """Room kept for the answer: the configured reserve, else the requested (or capped)
    output, at most half the window so a prompt always has room."""
    if explicit is not None:
        return min(explicit, window - 1)
    return min(requested, window // 2)
