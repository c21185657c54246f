"""The admission seam in front of every attempt (per-deployment rpm/tpm limits, queues).

Contract: before each attempt the router awaits ``gate.acquire(deployment, est_tokens,
priority)`` and calls ``permit.release(usage)`` exactly once when the attempt ends
(``usage`` is the upstream's usage dict, or None on failure). A gate may wait (queue)
or raise a ``PortwayError``: a retryable one (e.g. ``RateLimitError`` when the
deployment is saturated) makes the router try another deployment without counting an
attempt; any other error goes to the client. The default gate admits everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from portway.routing.catalog import Deployment

PRIORITY_HEADER = "x-portway-priority"


class Permit(Protocol):
    def release(self, usage: Mapping[str, Any] | None) -> None: ...


class DeploymentGate(Protocol):
    async def acquire(self, deployment: Deployment, est_tokens: int, priority: int) -> Permit: ...


class _NoPermit:
    def release(self, usage: Mapping[str, Any] | None) -> None:
        return None


NO_PERMIT: Permit = _NoPermit()


class OpenGate:
    """Admits every attempt at once."""

    async def acquire(self, deployment: Deployment, est_tokens: int, priority: int) -> Permit:
        return NO_PERMIT


def request_priority(headers: Mapping[str, str]) -> int:
    """The call's priority for the gate: ``x-portway-priority`` (an integer), else 0."""
    raw = headers.get(PRIORITY_HEADER)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0
