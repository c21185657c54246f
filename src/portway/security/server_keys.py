"""The server key: the one secret Portway itself holds, and the purpose keys derived from it.

The secret is ``server_key`` (config or ``PORTWAY_SERVER_KEY``), else the file
``server_key_file`` (unset: ``server.key`` next to the SQLite database, else
``./.portway/server.key``), generated on first start (256 random bits, hex, mode 0600,
created atomically so processes starting together agree). Replicas that share a database
must share the secret: set ``PORTWAY_SERVER_KEY`` on each.

Each use gets its own key, derived with HKDF-SHA256 (``cryptography``) from the secret and
a purpose name (``audit-checkpoints``, ``pseudonym-vault``, ``compaction``): setting or
rotating the one secret covers them all, and no key serves two purposes.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portway.config import ConfigError, Settings
from portway.security.sealing import Sealer
from portway.store.engine import sqlite_file

logger = logging.getLogger(__name__)

SECRET_BYTES = 32
# A configured secret shorter than this is refused: HKDF does not stretch a weak password.
MIN_SECRET_CHARS = 32
KEY_FILE = "server.key"
_INFO_PREFIX = b"portway/server-key/v1/"


@dataclass(frozen=True, slots=True)
class ServerKey:
    """The server secret; ``derive`` gives each purpose its own key."""

    secret: bytes = field(repr=False)

    def derive(self, purpose: str, length: int = 32) -> bytes:
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=length,
            salt=None,
            info=_INFO_PREFIX + purpose.encode("utf-8"),
        )
        return hkdf.derive(self.secret)

    def sealer(self, purpose: str) -> Sealer:
        """An AES-256-GCM sealer keyed for ``purpose``."""
        return Sealer(self.derive(purpose))


def key_path(settings: Settings) -> Path:
    """``server_key_file``, else ``server.key`` next to the SQLite database, else
    ``./.portway/server.key``."""
    if settings.server_key_file:
        return Path(settings.server_key_file)
    database = sqlite_file(settings.database_url)
    return (database.parent if database is not None else Path(".portway")) / KEY_FILE


def _read(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not text:
        raise ConfigError(f"server_key_file: {path} is empty")
    return text.encode("utf-8")


def _generate(path: Path) -> bytes:
    """Create the key file atomically: the key is written and synced to a private temporary
    file (O_EXCL, 0600) that is then hard-linked to ``path``, which fails if it exists. So
    the file never appears half-written, and a process that loses the race reads the
    winner's key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = secrets.token_hex(SECRET_BYTES)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            existing = _read(path)
            if existing is None:
                raise
            return existing
    finally:
        temporary.unlink(missing_ok=True)
    _sync_directory(path.parent)
    logger.info("generated the server key in %s", path)
    return text.encode("utf-8")


def _sync_directory(directory: Path) -> None:
    """Make the new directory entry durable (POSIX; a no-op where directories cannot be
    opened)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def load_server_key(settings: Settings) -> ServerKey:
    """The configured secret, else the key file's (generated when missing). Called once,
    at start-up: the secret never changes while a process runs."""
    if settings.server_key is not None:
        configured = settings.server_key.get_secret_value().strip()
        if len(configured) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"server_key: at least {MIN_SECRET_CHARS} characters are needed; make one "
                "with `python -c 'import secrets; print(secrets.token_hex(32))'`"
            )
        return ServerKey(configured.encode("utf-8"))
    path = key_path(settings)
    secret = _read(path) or _generate(path)
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(f"server_key_file: {path} holds fewer than {MIN_SECRET_CHARS} characters")
    return ServerKey(secret)
