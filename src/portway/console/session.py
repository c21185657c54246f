"""Console sessions: a signed, opaque cookie naming the principal, never the key.

Contract:
- ``SessionCodec`` signs ``{kind, key id, expiry, nonce}`` with HMAC-SHA256 under a secret
  derived from the master key (so every worker and replica sharing the master key accepts
  the same cookies, and changing the master key ends every session). An open server (no
  master key) signs with a random per-process secret.
- The cookie is HttpOnly, SameSite=Strict, Path=/; the raw key is checked once at login
  and never stored, logged or put in the cookie.
- Writes need the session's CSRF token (a form field or the ``x-portway-csrf`` header): an
  HMAC of the session's nonce, so it needs no server-side state. The playground's calls to
  ``/v1/chat/completions`` authenticate with the cookie only when that header carries the
  token (no other ``/v1`` path accepts the cookie): a cross-site page can neither read the
  token nor send a custom header without a CORS preflight, which Portway never approves.
- A virtual key's session is re-checked on every request (``KeyService.resolve_id``, cached
  for a second), so revoking or expiring the key ends its sessions.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

import orjson
from starlette.types import Scope

from portway.api.middleware import header_value
from portway.keys.service import KeyService
from portway.security.auth import KeyAuthenticator
from portway.security.principal import ANONYMOUS, MASTER, Principal

COOKIE = "portway_session"
CSRF_HEADER = "x-portway-csrf"
SESSION_SECONDS = 8 * 3600
# The /v1 paths the console's pages call with the cookie (and the CSRF header): the
# playground's chat and the sketcher page's sketches. Every other page reads its data on
# the server.
API_PATHS = ("/v1/chat/completions", "/v1/sketches")


def console_api_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in API_PATHS)


SessionKind = Literal["master", "virtual_key", "anonymous"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Session:
    kind: SessionKind
    key_id: str | None
    expires_at: float
    nonce: str


class SessionCodec:
    """Signs and verifies session cookies and derives their CSRF tokens."""

    def __init__(self, master_key: str | None) -> None:
        if master_key:
            self._secret = hmac.new(
                master_key.encode("utf-8"), b"portway console session v1", hashlib.sha256
            ).digest()
        else:
            self._secret = secrets.token_bytes(32)

    def _mac(self, label: bytes, payload: bytes) -> bytes:
        return hmac.new(self._secret, label + b"\x00" + payload, hashlib.sha256).digest()

    def new(self, kind: SessionKind, key_id: str | None, now: float | None = None) -> Session:
        issued = time.time() if now is None else now
        return Session(kind, key_id, issued + SESSION_SECONDS, secrets.token_urlsafe(16))

    def encode(self, session: Session) -> str:
        payload = orjson.dumps(
            {"k": session.kind, "i": session.key_id, "e": session.expires_at, "n": session.nonce}
        )
        return f"{_b64(payload)}.{_b64(self._mac(b'session', payload))}"

    def decode(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie carries, or None when it is malformed, forged or expired."""
        if not cookie or "." not in cookie or len(cookie) > 1024:
            return None
        body, _, mac = cookie.partition(".")
        try:
            payload, signature = _unb64(body), _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(signature, self._mac(b"session", payload)):
            return None
        try:
            data = orjson.loads(payload)
            session = Session(str(data["k"]), data["i"], float(data["e"]), str(data["n"]))  # type: ignore[arg-type]
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None
        if session.kind not in ("master", "virtual_key", "anonymous"):
            return None
        if session.expires_at <= (time.time() if now is None else now):
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        return _b64(self._mac(b"csrf", session.nonce.encode("ascii")))[:32]

    def csrf_ok(self, session: Session, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8"), self.csrf_token(session).encode("ascii")
        )


def _cookie(scope: Scope, name: str) -> str | None:
    for header, value in scope["headers"]:
        if header != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            key, _, item = part.strip().partition("=")
            if key == name:
                return item
    return None


class ConsoleAuth:
    """Login with a key, and the principal behind a session cookie (pages and /v1 calls)."""

    def __init__(self, authenticator: KeyAuthenticator, keys: KeyService, master_key: str | None):
        self._authenticator = authenticator
        self._keys = keys
        self.codec = SessionCodec(master_key)
        self.open = master_key is None

    async def login(self, key: str) -> Session | None:
        """A new session for a valid master or virtual key; None for anything else."""
        key = key.strip()
        if not key:
            return None
        if self._authenticator.is_master(key):
            return self.codec.new("master", None)
        resolved = await self._keys.resolve(key)
        if resolved.status(time.time()) == "active" and resolved.principal is not None:
            return self.codec.new("virtual_key", resolved.principal.key_id)
        return None

    def anonymous(self) -> Session:
        """The session an open server (no master key) hands out without a login."""
        return self.codec.new("anonymous", None)

    async def principal(self, session: Session) -> Principal | None:
        """Who the session acts as now; None once its virtual key is revoked or expired."""
        if session.kind == "master":
            return None if self.open else MASTER
        if session.kind == "anonymous":
            return ANONYMOUS if self.open else None
        if session.key_id is None:
            return None
        resolved = await self._keys.resolve_id(session.key_id)
        if resolved.status(time.time()) != "active":
            return None
        return resolved.principal

    def session_of(self, scope: Scope) -> Session | None:
        return self.codec.decode(_cookie(scope, COOKIE))

    async def api_principal(self, scope: Scope) -> Principal | None:
        """A /v1 call from the console's own JavaScript: the cookie plus the CSRF header."""
        if not console_api_path(scope["path"]):
            return None
        session = self.session_of(scope)
        if session is None or not self.codec.csrf_ok(
            session, header_value(scope, CSRF_HEADER.encode())
        ):
            return None
        return await self.principal(session)
