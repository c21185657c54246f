"""The compaction key and sealed items: the key is generated once into the data directory,
readable by its owner only, and read back on the next start; a sealed item opens only
unaltered, under the same key and for the same tenant."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from portway.config import CompactionConfig, ConfigError
from portway.context.catalog import known_window
from portway.context.sealing import Sealed, Sealer, key_path, load_key
from portway.errors import InvalidRequestError


def test_the_key_is_generated_once_next_to_the_database_with_0600(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/data/portway.db"
    config = CompactionConfig()
    path = key_path(config, url)
    assert path == tmp_path / "data" / "compaction.key"
    first = load_key(config, url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(config, url) == first  # the next start reads it back
    Fernet(first)  # a valid key


def test_a_configured_key_wins_and_a_bad_one_is_a_config_error(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    config = CompactionConfig(key=SecretStr(key.decode()), key_file=str(tmp_path / "unused"))
    assert load_key(config, "sqlite:///:memory:") == key
    assert not (tmp_path / "unused").exists()
    with pytest.raises(ConfigError, match=r"compaction\.key"):
        Sealer(b"not a key")


def test_a_sealed_item_opens_only_unaltered_same_key_same_tenant() -> None:
    sealer = Sealer(Fernet.generate_key())
    sealed = Sealed("The user likes boats.", ({"role": "user", "content": "Hi"},))
    content = sealer.seal(sealed, "team-a")
    assert "boats" not in content
    assert sealer.open(content, "team-a") == sealed
    for tenant, other in (
        ("team-b", content),
        ("team-a", content[:-4] + ("AAAA" if not content.endswith("AAAA") else "BBBB")),
        ("team-a", Sealer(Fernet.generate_key()).seal(sealed, "team-a")),
        ("team-a", "garbage"),
    ):
        with pytest.raises(InvalidRequestError) as caught:
            sealer.open(other, tenant, "input[3]")
        assert caught.value.code == "invalid_encrypted_content"
        assert caught.value.param == "input[3]"


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("gpt-4o-2024-08-06", 128_000),
        ("gpt-4o-mini", 128_000),
        ("gpt-4", 8_192),
        ("gpt-4-turbo", 128_000),
        ("gpt-4.1-mini", 1_047_576),
        ("openai/gpt-3.5-turbo", 16_385),
        ("claude-3-5-sonnet-20241022", 200_000),
        ("claude-sonnet-4-20250514", 200_000),
        ("my-finetune", None),
    ],
)
def test_the_catalog_knows_the_families_by_prefix(model: str, window: int | None) -> None:
    assert known_window(model) == window
