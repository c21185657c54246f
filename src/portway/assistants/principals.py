"""Who a run's model calls are attributed to.

A run stores a snapshot of its creator's principal (kind, key id, user, team, allowed
models, metadata), so background workers in any process, after a restart too, know whom
they work for. A snapshot is not a key's current state: before each model call
``RunPrincipals`` looks a virtual key up again by id (``KeyService.resolve_id``, cached
for ``keys.cache_ttl_seconds``), so a revoked, expired or deleted key stops its runs and
the key's current limits, budgets and allowed models apply. Master-key and anonymous
runs have no key to look up and run as their snapshot.
"""

from __future__ import annotations

import time
from typing import Any

from portway.errors import AuthenticationError
from portway.keys.service import KeyService
from portway.security.principal import Principal


def principal_snapshot(principal: Principal) -> dict[str, Any]:
    """The identity fields of a principal as JSON (secrets are never part of a principal)."""
    return {
        "kind": principal.kind,
        "key_id": principal.key_id,
        "user": principal.user,
        "team": principal.team,
        "allowed_models": (
            list(principal.allowed_models) if principal.allowed_models is not None else None
        ),
        "metadata": dict(principal.metadata),
    }


def principal_from_snapshot(snapshot: dict[str, Any]) -> Principal:
    allowed = snapshot.get("allowed_models")
    return Principal(
        kind=snapshot.get("kind", "anonymous"),
        key_id=snapshot.get("key_id"),
        user=snapshot.get("user"),
        team=snapshot.get("team"),
        allowed_models=tuple(allowed) if allowed is not None else None,
        metadata=dict(snapshot.get("metadata") or {}),
    )


class RunPrincipals:
    def __init__(self, keys: KeyService) -> None:
        self._keys = keys

    async def current(self, snapshot: dict[str, Any]) -> Principal:
        """The run creator as of now; ``AuthenticationError`` when its key no longer works."""
        stored = principal_from_snapshot(snapshot)
        if stored.kind != "virtual_key" or stored.key_id is None:
            return stored
        resolved = await self._keys.resolve_id(stored.key_id)
        status = resolved.status(time.time())
        if status == "active" and resolved.principal is not None:
            return resolved.principal
        reason = {
            "revoked": ("has been revoked", "revoked_api_key"),
            "expired": ("has expired", "expired_api_key"),
        }.get(status, ("no longer exists", "invalid_api_key"))
        raise AuthenticationError(
            f"The API key that created this run ({stored.key_id}) {reason[0]}; "
            "the run was stopped.",
            code=reason[1],
        )
