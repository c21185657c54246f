"""Server keys: secrets Portway itself holds (e.g. to sign audit checkpoints).

A key comes from the configuration, else an environment variable, else a file in the
data directory that is generated on first use (256 random bits, hex, mode 0600). Every
process sharing that file (or the configured value) uses the same key.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from pydantic import SecretStr

KEY_BYTES = 32


def _read(path: Path) -> bytes | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not text:
        raise ValueError(f"server key file {path} is empty")
    return text.encode("utf-8")


def _generate(path: Path) -> bytes:
    """Create the key file atomically (O_EXCL): two processes starting together agree."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = secrets.token_hex(KEY_BYTES)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        existing = _read(path)
        if existing is None:
            raise
        return existing
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return text.encode("utf-8")


def load_server_key(
    configured: SecretStr | None,
    env_name: str,
    path: Path,
    environ: Mapping[str, str] | None = None,
) -> bytes:
    """The key: ``configured``, else ``$env_name``, else ``path`` (created if absent)."""
    if configured is not None and configured.get_secret_value().strip():
        return configured.get_secret_value().strip().encode("utf-8")
    from_env = (environ if environ is not None else os.environ).get(env_name, "").strip()
    if from_env:
        return from_env.encode("utf-8")
    return _read(path) or _generate(path)
