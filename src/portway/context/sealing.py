"""Sealed compaction items: a summary a client carries, only Portway can read or forge.

Contract: ``seal`` encrypts and authenticates a summary (and the newer chat messages it
is followed by) for a tenant with the server's Fernet key (AES-128-CBC + HMAC-SHA256,
``cryptography``); ``open`` returns them, or raises a 400
``invalid_encrypted_content`` for content that was altered, sealed under another key or
is not a sealed item at all. The key is ``compaction.key`` (config, e.g. from an
environment variable), else read from ``compaction.key_file`` (default: the data
directory's ``compaction.key``), else generated there on first start, readable by its
owner only (0600).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken

from portway.config import CompactionConfig, ConfigError
from portway.errors import InvalidRequestError
from portway.store.engine import sqlite_file

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sealed:
    """A summary and the chat messages that came after what it summarizes."""

    summary: str
    messages: tuple[dict[str, Any], ...] = ()


# What a sealed item holds, versioned so its shape may change.
FORMAT = "portway.compaction.v1"
KEY_FILE = "compaction.key"


def _generated(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key + b"\n")
    logger.info("generated the compaction key in %s", path)
    return key


def key_path(config: CompactionConfig, database_url: str) -> Path:
    """``key_file``, else ``compaction.key`` in the data directory (the SQLite database's,
    else ``./.portway``)."""
    if config.key_file is not None:
        return Path(config.key_file)
    database = sqlite_file(database_url)
    return (database.parent if database is not None else Path(".portway")) / KEY_FILE


def load_key(config: CompactionConfig, database_url: str) -> bytes:
    """The configured key, else the key file's (generated when missing)."""
    if config.key is not None:
        return config.key.get_secret_value().encode()
    path = key_path(config, database_url)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        try:
            return _generated(path)
        except FileExistsError:  # another worker generated it first
            return path.read_bytes().strip()


class Sealer:
    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except ValueError:
            raise ConfigError(
                "compaction.key: not a Fernet key (32 url-safe base64-encoded bytes); "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            ) from None

    @classmethod
    def from_config(cls, config: CompactionConfig, database_url: str) -> Sealer:
        return cls(load_key(config, database_url))

    def seal(self, sealed: Sealed, tenant: str) -> str:
        payload = {
            "format": FORMAT,
            "tenant": tenant,
            "summary": sealed.summary,
            "messages": list(sealed.messages),
        }
        return self._fernet.encrypt(orjson.dumps(payload)).decode()

    def open(self, content: str, tenant: str, param: str = "input") -> Sealed:
        """What a sealed item holds (sealed for ``tenant``), or a 400."""
        try:
            payload = orjson.loads(self._fernet.decrypt(content.encode()))
        except (InvalidToken, orjson.JSONDecodeError, UnicodeEncodeError):
            payload = None
        if (
            not isinstance(payload, dict)
            or payload.get("format") != FORMAT
            or payload.get("tenant") != tenant
            or not isinstance(payload.get("summary"), str)
            or not isinstance(payload.get("messages"), list)
        ):
            raise InvalidRequestError(
                "The compaction item's encrypted_content could not be verified: it was "
                "altered, or was not produced by this server for this organization.",
                param=param,
                code="invalid_encrypted_content",
            )
        return Sealed(str(payload["summary"]), tuple(payload["messages"]))
