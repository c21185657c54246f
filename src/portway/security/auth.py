"""Authentication: turn the request's bearer token into a ``Principal``."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import replace
from typing import Protocol

from portway.errors import AuthenticationError
from portway.keys.service import KeyService, looks_like_virtual_key
from portway.retention import KEEP, Retention
from portway.security.principal import ANONYMOUS, MASTER, Principal


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if well formed."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


class Authenticator(Protocol):
    async def authenticate(self, token: str | None) -> Principal: ...


class MasterKeyAuthenticator:
    """Open when no master key is set; otherwise only the master key is accepted."""

    def __init__(self, master_key: str | None, retention: Retention = KEEP) -> None:
        self._master_digest = hash_secret(master_key) if master_key else None
        # The server default retention applies to the master key and an open server too.
        self._master = replace(MASTER, retention=retention)
        self._anonymous = replace(ANONYMOUS, retention=retention)

    @property
    def enabled(self) -> bool:
        return self._master_digest is not None

    def is_master(self, token: str) -> bool:
        return self._master_digest is not None and hmac.compare_digest(
            hash_secret(token), self._master_digest
        )

    async def authenticate(self, token: str | None) -> Principal:
        if self._master_digest is None:
            return self._anonymous
        if token is None:
            raise AuthenticationError(
                "You didn't provide an API key. Provide it in the Authorization header "
                "(Authorization: Bearer YOUR_KEY)."
            )
        if self.is_master(token):
            return self._master
        raise AuthenticationError("Incorrect API key provided.")


class KeyAuthenticator(MasterKeyAuthenticator):
    """The master key or a virtual key (``pw-...``).

    A revoked, expired or unknown virtual key gets 401 when a master key is set. On an
    open server (no master key) a valid virtual key still identifies its caller (so its
    limits and budgets apply) and a revoked or expired one is refused; anything else is
    let in as the anonymous admin, as before.
    """

    def __init__(
        self, master_key: str | None, keys: KeyService, retention: Retention = KEEP
    ) -> None:
        super().__init__(master_key, retention)
        self._keys = keys

    async def authenticate(self, token: str | None) -> Principal:
        if token is not None and looks_like_virtual_key(token):
            resolved = await self._keys.resolve(token)
            status = resolved.status(time.time())
            if status == "active" and resolved.principal is not None:
                return resolved.principal
            if status == "revoked":
                raise AuthenticationError("This API key has been revoked.", code="revoked_api_key")
            if status == "expired":
                raise AuthenticationError("This API key has expired.", code="expired_api_key")
        return await super().authenticate(token)
