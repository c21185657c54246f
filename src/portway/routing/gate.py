"""The admission seam in front of every attempt: per-deployment rpm/tpm limits and queues.

Contract (``portway.limits.gate.DeploymentGate`` implements it): for a deployment the
gate ``limited`` by, the router awaits ``acquire(deployment_id, est_tokens, priority)``
before each attempt and, for the attempt that served the call (completed, streamed to
the end, or cut short), ``release(deployment_id, est_tokens, actual_tokens)`` exactly
once to true up the token count: with the provider's usage, else with the usage
recorder's count (``CallContext.usage_listeners``). An attempt that failed before
answering keeps its estimate. ``acquire`` may wait (queue) or raise a ``PortwayError``: a
retryable one (``RateLimitError`` when the deployment is saturated) makes the router try
another deployment without counting an attempt; any other error goes to the client.
``counts_tokens`` says whether the estimate matters (it is only computed then).
"""

from __future__ import annotations

from typing import Protocol


class DeploymentGate(Protocol):
    def limited(self, deployment_id: str) -> bool: ...

    def counts_tokens(self, deployment_id: str) -> bool: ...

    async def acquire(self, deployment_id: str, est_tokens: int, priority: int = 0) -> None: ...

    async def release(self, deployment_id: str, est_tokens: int, actual_tokens: int) -> None: ...
