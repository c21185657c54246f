"""Sealing: authenticated encryption of what Portway stores but must not keep in clear
(a conversation's pseudonym map). AES-256-GCM (``cryptography``), a random 96-bit nonce per
message, and associated data binding a sealed blob to where it belongs (a blob copied to
another row does not open).

The server key: ``sealing_key`` (config or ``PORTWAY_SEALING_KEY``, 32 bytes in
URL-safe base64), else the file ``sealing_key_file``, created with mode 0600 on first use.
Replicas that share a database must share the key (set ``PORTWAY_SEALING_KEY``).
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

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
            raise ConfigError(f"sealing_key: {KEY_BYTES} bytes are needed, got {len(key)}")
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


def decode_key(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("sealing_key: not URL-safe base64") from exc


def key_from_file(path: Path) -> bytes:
    """The key in ``path``, created (0600, atomically) when missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        encoded = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES))
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(encoded + b"\n")
    return decode_key(path.read_text())


def load_sealer(key: str | None, key_file: str) -> Sealer:
    """The server's sealer: the configured key, else the key file's."""
    return Sealer(decode_key(key) if key else key_from_file(Path(key_file)))
