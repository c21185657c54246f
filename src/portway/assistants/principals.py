"""A run remembers who created it, so background workers (in any process, after a
restart too) attribute its model calls to that principal."""

from __future__ import annotations

from typing import Any

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
