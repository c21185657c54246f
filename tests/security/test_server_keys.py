"""The server key: generated once (0600) next to the database, else configured (also from
``PORTWAY_SERVER_KEY``); every purpose gets its own derived key; the code_interpreter
sandbox may not bind the key file."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from portway.config import ConfigError, Settings, load_settings
from portway.context.sealing import PURPOSE as COMPACTION
from portway.guardrails.vault import PURPOSE as VAULT
from portway.security.audit_log import PURPOSE as AUDIT
from portway.security.server_keys import ServerKey, key_path, load_server_key
from portway.services import _protected_paths

SECRET = "0123456789abcdef" * 4


def test_the_key_is_generated_once_next_to_the_sqlite_database_with_0600(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/data/portway.db")
    path = key_path(settings)
    assert path == tmp_path / "data" / "server.key"
    first = load_server_key(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) == 64  # 256 bits, hex
    assert load_server_key(settings) == first  # the next start reads it back


def test_without_sqlite_the_key_file_is_in_dot_portway() -> None:
    settings = Settings(database_url="postgresql://portway@db/portway")
    assert key_path(settings) == Path(".portway") / "server.key"


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    for attempt in range(20):  # a race is not certain on one try
        path = tmp_path / str(attempt) / "server.key"
        settings = Settings(server_key_file=str(path))
        with ThreadPoolExecutor(8) as pool:
            keys = list(pool.map(lambda _, s=settings: load_server_key(s), range(16)))
        assert len({key.secret for key in keys}) == 1
        assert [entry.name for entry in path.parent.iterdir()] == ["server.key"]


def test_a_configured_key_wins_and_the_file_is_not_made(tmp_path: Path) -> None:
    unused = tmp_path / "unused.key"
    settings = Settings(server_key=SecretStr(SECRET), server_key_file=str(unused))
    assert load_server_key(settings).secret == SECRET.encode()
    assert not unused.exists()


def test_the_key_comes_from_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        {"PORTWAY_SERVER_KEY": SECRET, "PORTWAY_SERVER_KEY_FILE": str(tmp_path / "x.key")},
    )
    assert load_server_key(settings).secret == SECRET.encode()
    assert SECRET not in repr(settings) and SECRET not in repr(load_server_key(settings))
    blank = load_settings(None, {"PORTWAY_SERVER_KEY": " "})
    assert blank.server_key is None


def test_a_short_or_empty_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="server_key: at least 32"):
        load_server_key(Settings(server_key=SecretStr("too-short")))
    empty = tmp_path / "server.key"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="is empty"):
        load_server_key(Settings(server_key_file=str(empty)))


def test_each_purpose_derives_its_own_stable_key() -> None:
    key = ServerKey(SECRET.encode())
    derived = {purpose: key.derive(purpose) for purpose in (AUDIT, VAULT, COMPACTION)}
    assert len(set(derived.values())) == 3
    assert all(len(value) == 32 for value in derived.values())
    assert ServerKey(SECRET.encode()).derive(AUDIT) == derived[AUDIT]
    assert ServerKey(b"f" * 64).derive(AUDIT) != derived[AUDIT]  # one secret rotates all


def test_a_purpose_sealer_does_not_open_another_purposes_blob() -> None:
    from portway.security.sealing import SealError

    key = ServerKey(SECRET.encode())
    blob = key.sealer(VAULT).seal(b"map", b"where")
    assert key.sealer(VAULT).open(blob, b"where") == b"map"
    with pytest.raises(SealError):
        key.sealer(COMPACTION).open(blob, b"where")


def test_the_sandbox_may_not_bind_the_key_file(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql://portway@db/portway",
        server_key_file=str(tmp_path / "secret" / "server.key"),
    )
    assert tmp_path / "secret" / "server.key" in _protected_paths(settings)


@pytest.mark.parametrize(
    "removed",
    [
        {"sealing_key_file": "x"},
        {"compaction": {"key_file": "x"}},
        {"audit": {"key_file": "x"}},
    ],
)
def test_the_old_per_feature_key_settings_are_unknown(removed: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        Settings.model_validate(removed)
