"""Sealed compaction items: one opens only unaltered, under the same server key and for
the same tenant; anything else is a 400 ``invalid_encrypted_content``."""

from __future__ import annotations

import base64

import pytest

from portway.context.catalog import known_window
from portway.context.sealing import PURPOSE, CompactionSealer, Sealed
from portway.errors import InvalidRequestError
from portway.security.server_keys import ServerKey


def _sealer(secret: str) -> CompactionSealer:
    return CompactionSealer(ServerKey(secret.encode()).sealer(PURPOSE))


def _flipped(content: str) -> str:
    """``content`` with one bit of its ciphertext flipped."""
    blob = bytearray(base64.urlsafe_b64decode(content))
    blob[-20] ^= 0x01
    return base64.urlsafe_b64encode(bytes(blob)).decode()


def test_a_sealed_item_opens_only_unaltered_same_key_same_tenant() -> None:
    sealer = _sealer("a" * 64)
    sealed = Sealed("The user likes boats.", ({"role": "user", "content": "Hi"},))
    content = sealer.seal(sealed, "team-a")
    assert "boats" not in content
    assert "boats" not in base64.urlsafe_b64decode(content).decode("latin-1")
    assert sealer.open(content, "team-a") == sealed
    assert content != sealer.seal(sealed, "team-a")  # a fresh nonce each time
    for tenant, other in (
        ("team-b", content),
        ("team-a", _flipped(content)),
        ("team-a", _sealer("b" * 64).seal(sealed, "team-a")),
        ("team-a", "garbage"),
        ("team-a", "not base64 at all: é"),
        ("team-a", ""),
    ):
        with pytest.raises(InvalidRequestError) as caught:
            sealer.open(other, tenant, "input[3]")
        assert caught.value.code == "invalid_encrypted_content"
        assert caught.value.param == "input[3]"


def test_an_item_sealed_by_another_replica_with_the_same_server_key_opens() -> None:
    sealed = Sealed("Summary.")
    content = _sealer("c" * 64).seal(sealed, "team-a")
    assert _sealer("c" * 64).open(content, "team-a") == sealed


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
