"""A test-only authenticator: fixed tokens for principals of different tenants."""

from __future__ import annotations

from collections.abc import Mapping

from portway.errors import AuthenticationError
from portway.security.principal import Principal


def team_key(name: str) -> Principal:
    return Principal(kind="virtual_key", key_id=f"key-{name}", team=f"team-{name}")


class TokenAuthenticator:
    """Accepts exactly the given tokens; inject with ``services.authenticator = ...``."""

    def __init__(self, principals: Mapping[str, Principal]) -> None:
        self._principals = dict(principals)

    async def authenticate(self, token: str | None) -> Principal:
        principal = self._principals.get(token or "")
        if principal is None:
            raise AuthenticationError("Incorrect API key provided.")
        return principal
