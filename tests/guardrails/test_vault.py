"""Pseudonym maps at rest: sealed with the server key, bound to their tenant and owner,
continued by a later call of the conversation."""

from __future__ import annotations

from pathlib import Path

import pytest

from portway.guardrails.base import GuardSession
from portway.guardrails.pii import PiiGuardrail
from portway.guardrails.vault import PseudonymVault
from portway.security.sealing import Sealer, SealError
from portway.store import Database
from portway.store.pseudonyms import PseudonymStore

EMAIL = "erin@example.com"


def test_a_sealed_blob_opens_only_with_its_key_and_place() -> None:
    sealer = Sealer(b"k" * 32)
    blob = sealer.seal(b"secret map", b"tenant\0owner")
    assert b"secret map" not in blob
    assert sealer.open(blob, b"tenant\0owner") == b"secret map"
    with pytest.raises(SealError):
        sealer.open(blob, b"tenant\0other")
    with pytest.raises(SealError):
        Sealer(b"x" * 32).open(blob, b"tenant\0owner")


def test_a_later_call_continues_the_placeholders() -> None:
    first = GuardSession()
    PiiGuardrail().check_input(f"mail {EMAIL}", "redact", first)
    later = GuardSession.resumed(first.saved())
    text = PiiGuardrail().check_input(f"again {EMAIL}, and frank@example.com", "redact", later)
    assert text == "again <EMAIL_1>, and <EMAIL_2>"
    assert later.restore("<EMAIL_1>") == EMAIL


async def test_the_vault_round_trips_per_tenant(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/vault.db")
    await database.start()
    try:
        vault = PseudonymVault(PseudonymStore(database), Sealer(b"s" * 32))
        session = GuardSession()
        PiiGuardrail().check_input(f"mail {EMAIL}", "redact", session)
        await vault.save("team-a", "thread_1", session.saved())
        assert await vault.load("team-a", "thread_1") == session.saved()
        assert await vault.load("team-b", "thread_1") is None  # tenants isolated
        await vault.drop("team-a", "thread_1")
        assert await vault.load("team-a", "thread_1") is None
    finally:
        await database.close()


async def test_a_map_sealed_under_another_server_key_is_treated_as_absent(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path}/vault.db")
    await database.start()
    try:
        store = PseudonymStore(database)
        await PseudonymVault(store, Sealer(b"s" * 32)).save("team-a", "thread_1", {"n": 1})
        assert await PseudonymVault(store, Sealer(b"t" * 32)).load("team-a", "thread_1") is None
    finally:
        await database.close()
