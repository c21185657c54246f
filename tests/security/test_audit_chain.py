"""The hash chain's verifier on its own: every kind of tampering is named at its record."""

from __future__ import annotations

from dataclasses import replace

from portway.security.audit_chain import (
    GENESIS,
    AuditRecord,
    ChainVerifier,
    Checkpoint,
    canonical_json,
    key_id,
    record_hash,
    sign_checkpoint,
)

KEY = b"test-signing-key"


def chain(n: int) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        details = canonical_json({"n": seq, "note": f"é{seq}"})
        digest = record_hash(
            seq, 1_000_000 * seq, "admin", "key.create", "master", f"k{seq}", details, prev
        )
        records.append(
            AuditRecord(
                seq,
                1_000_000 * seq,
                "admin",
                "key.create",
                "master",
                f"k{seq}",
                details,
                prev,
                digest,
            )
        )
        prev = digest
    return records


def checkpoint_at(record: AuditRecord, key: bytes = KEY) -> Checkpoint:
    return Checkpoint(
        record.seq, record.hash, 5, key_id(key), sign_checkpoint(key, record.seq, record.hash, 5)
    )


def verify(
    records: list[AuditRecord],
    checkpoints: list[Checkpoint] = (),
    head: tuple[int, str] | None = None,
):  # type: ignore[assignment,no-untyped-def]
    verifier = ChainVerifier(checkpoints, KEY)
    for record in records:
        verifier.add(record)
    if head is None:
        head = (records[-1].seq, records[-1].hash) if records else (0, GENESIS)
    return verifier.finish(*head)


def test_an_untouched_chain_verifies() -> None:
    records = chain(6)
    report = verify(records, [checkpoint_at(records[2]), checkpoint_at(records[5])])
    assert report.ok and report.records == 6 and report.checkpoints == 2


def test_canonical_json_is_key_order_independent() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == canonical_json(
        {"a": [1, {"c": 3, "d": 2}], "b": 1}
    )


def test_an_edited_record_is_named() -> None:
    records = chain(5)
    records[2] = replace(records[2], actor="someone-else")
    report = verify(records)
    assert not report.ok
    assert report.first is not None and report.first.seq == 3
    assert "record 3 was altered" in report.first.message


def test_a_deleted_record_is_named() -> None:
    records = chain(5)
    del records[1]
    report = verify(records)
    assert report.first is not None and report.first.seq == 2
    assert "record 2 is missing" in report.first.message


def test_a_deleted_tail_is_caught_by_the_head() -> None:
    records = chain(5)
    head = (records[-1].seq, records[-1].hash)
    report = verify(records[:3], head=head)
    assert report.first is not None and report.first.seq == 4
    assert "4..5 are missing" in report.first.message


def test_a_reordered_pair_is_named_at_the_first_of_them() -> None:
    records = chain(5)
    # Swap the contents of records 2 and 3 but keep the sequence numbers in place.
    a, b = records[1], records[2]
    records[1] = replace(b, seq=2)
    records[2] = replace(a, seq=3)
    report = verify(records)
    assert report.first is not None and report.first.seq == 2


def test_a_rebuilt_chain_does_not_match_an_earlier_checkpoint() -> None:
    records = chain(4)
    checkpoints = [checkpoint_at(records[3])]
    # An attacker edits record 2 and recomputes every hash after it (no key needed).
    rebuilt: list[AuditRecord] = records[:1]
    prev = records[0].hash
    for record in records[1:]:
        actor = "forged" if record.seq == 2 else record.actor
        digest = record_hash(
            record.seq,
            record.created_us,
            record.kind,
            record.action,
            actor,
            record.subject,
            record.details,
            prev,
        )
        rebuilt.append(replace(record, actor=actor, prev_hash=prev, hash=digest))
        prev = digest
    report = verify(rebuilt, checkpoints)
    assert not report.ok
    assert report.first is not None and report.first.seq == 4
    assert "checkpoint" in report.first.message


def test_a_forged_checkpoint_signature_is_caught() -> None:
    records = chain(3)
    forged = replace(checkpoint_at(records[2]), signature="0" * 64)
    other_key = checkpoint_at(records[1], key=b"another key")
    report = verify(records, [forged, other_key])
    messages = [p.message for p in report.problems]
    assert any("bad signature" in m for m in messages)
    assert any("not this server's key" in m for m in messages)
