"""Whom a stored object belongs to, for retention and user data deletion."""

from __future__ import annotations

from typing import Any

from portway.security.principal import Principal
from portway.store.privacy import ContentOwner

# The kinds of stored content Portway tracks (and purges / deletes per user).
KINDS = ("response", "conversation", "thread", "file", "vector_store", "batch", "sketch")


def request_user(request: Any) -> str | None:
    """The end user a request names (``user``, or Responses' ``safety_identifier``)."""
    for name in ("user", "safety_identifier"):
        value = getattr(request, name, None)
        if isinstance(value, str) and value.strip():
            return value.strip()[:200]
    return None


def content_owner(
    principal: Principal,
    kind: str,
    object_id: str,
    created_at: float,
    user: str | None = None,
) -> ContentOwner:
    """The request's ``user`` wins over the key's: a shared backend key serves many users."""
    return ContentOwner(
        kind=kind,
        object_id=object_id,
        tenant=principal.tenant,
        key_id=principal.key_id,
        team_id=principal.team,
        user_id=user or principal.user,
        created_at=created_at,
    )
