"""Sealing: authenticated encryption of what Portway stores or hands out but must keep
unreadable and unforgeable (a conversation's pseudonym map, a Responses compaction item).
AES-256-GCM (``cryptography``), a random 96-bit nonce per message, and associated data
binding a sealed blob to where it belongs (a blob copied to another row or tenant does not
open). Keys are derived from the server key per purpose (``security.server_keys``).
"""

from __future__ import annotations

import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from portway.config import ConfigError

KEY_BYTES = 32
NONCE_BYTES = 12
VERSION = b"\x01"


class SealError(Exception):
    """A blob that does not open with this key and associated data."""


class Sealer:
    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError(f"sealer: {KEY_BYTES} bytes are needed, got {len(key)}")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, associated: bytes) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return VERSION + nonce + self._aead.encrypt(nonce, plaintext, associated)

    def open(self, blob: bytes, associated: bytes) -> bytes:
        if blob[:1] != VERSION or len(blob) < 1 + NONCE_BYTES + 16:
            raise SealError("unknown sealed format")
        nonce, body = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, associated)
        except InvalidTag as exc:
            raise SealError("the sealed blob does not open with this key") from exc
