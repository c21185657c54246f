"""The audit log's hash chain: canonical JSON, record hashes, signed checkpoints, verification.

Contract:
- A record's hash is SHA-256 over the canonical JSON (sorted keys, no spaces, UTF-8) of
  its fields and the previous record's hash; the first record follows ``GENESIS``
  (64 zeros). Sequence numbers start at 1 with no gaps. Editing a record changes its
  hash; deleting or reordering records breaks the ``prev_hash`` links or the sequence.
- Anyone with write access could rebuild the whole chain after an edit, so checkpoints
  sign (HMAC-SHA256 with the server key) the hash at a sequence number: a rewritten
  chain no longer matches a checkpoint made before the rewrite.
- ``ChainVerifier`` consumes records in sequence order (any number, page by page) and
  reports every problem, first bad record first. Pure: no I/O here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    """The one serialisation every hash and signature is computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One appended record as stored (``details`` is canonical JSON text)."""

    seq: int
    created_us: int
    kind: str
    action: str
    actor: str
    subject: str | None
    details: str
    prev_hash: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "created_at": self.created_us / 1_000_000,
            "created_us": self.created_us,
            "kind": self.kind,
            "action": self.action,
            "actor": self.actor,
            "subject": self.subject,
            "details": json.loads(self.details),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def record_hash(
    seq: int,
    created_us: int,
    kind: str,
    action: str,
    actor: str,
    subject: str | None,
    details: str,
    prev_hash: str,
) -> str:
    payload = {
        "seq": seq,
        "created_us": created_us,
        "kind": kind,
        "action": action,
        "actor": actor,
        "subject": subject,
        "details": details,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def recomputed(record: AuditRecord) -> str:
    return record_hash(
        record.seq,
        record.created_us,
        record.kind,
        record.action,
        record.actor,
        record.subject,
        record.details,
        record.prev_hash,
    )


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    created_us: int
    key_id: str
    signature: str


def key_id(key: bytes) -> str:
    """A short public name for a signing key (which key signed a checkpoint)."""
    return hashlib.sha256(b"portway-audit-key-id:" + key).hexdigest()[:16]


def sign_checkpoint(key: bytes, seq: int, chain_hash: str, created_us: int) -> str:
    message = canonical_json({"seq": seq, "hash": chain_hash, "created_us": created_us})
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int | None
    message: str


@dataclass
class VerifyReport:
    records: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "problems": [{"seq": p.seq, "message": p.message} for p in self.problems],
        }


class ChainVerifier:
    """Feed records in ``seq`` order with ``add``; then ``finish`` with the head."""

    def __init__(self, checkpoints: Iterable[Checkpoint], key: bytes | None) -> None:
        self.report = VerifyReport()
        self._expected_seq = 1
        self._prev = GENESIS
        self._by_seq: dict[int, list[Checkpoint]] = {}
        own_key = key_id(key) if key is not None else None
        for checkpoint in checkpoints:
            self.report.checkpoints += 1
            self._by_seq.setdefault(checkpoint.seq, []).append(checkpoint)
            if key is None:
                continue
            if checkpoint.key_id != own_key:
                self._problem(
                    checkpoint.seq,
                    f"checkpoint at record {checkpoint.seq} is signed with key "
                    f"{checkpoint.key_id}, not this server's key {own_key}",
                )
                continue
            good = sign_checkpoint(key, checkpoint.seq, checkpoint.hash, checkpoint.created_us)
            if not hmac.compare_digest(good, checkpoint.signature):
                self._problem(
                    checkpoint.seq,
                    f"checkpoint at record {checkpoint.seq} has a bad signature "
                    "(the checkpoint was edited)",
                )

    def _problem(self, seq: int | None, message: str) -> None:
        self.report.problems.append(Problem(seq, message))

    def add(self, record: AuditRecord) -> None:
        self.report.records += 1
        if record.seq != self._expected_seq:
            if record.seq > self._expected_seq:
                gap = (
                    f"record {self._expected_seq} is missing"
                    if record.seq == self._expected_seq + 1
                    else f"records {self._expected_seq}..{record.seq - 1} are missing"
                )
                self._problem(self._expected_seq, f"{gap} (deleted): the next is {record.seq}")
            else:
                self._problem(record.seq, f"record {record.seq} appears out of order")
        if recomputed(record) != record.hash:
            self._problem(
                record.seq,
                f"record {record.seq} was altered: its content does not match its hash "
                "(edited, or moved to another position)",
            )
        elif record.prev_hash != self._prev:
            self._problem(
                record.seq,
                f"record {record.seq} does not follow record {record.seq - 1}: the chain "
                "is broken there (a record deleted, inserted or reordered)",
            )
        for checkpoint in self._by_seq.pop(record.seq, ()):
            if checkpoint.hash != record.hash:
                self._problem(
                    record.seq,
                    f"record {record.seq} does not match the signed checkpoint made at it "
                    "(the chain was rewritten)",
                )
        self._prev = record.hash
        self._expected_seq = record.seq + 1

    def finish(self, head_seq: int, head_hash: str) -> VerifyReport:
        last = self._expected_seq - 1
        if head_seq > last:
            self._problem(
                last + 1,
                f"records {last + 1}..{head_seq} are missing (deleted): the chain head "
                f"says the log ends at {head_seq}",
            )
        elif head_seq < last:
            self._problem(
                head_seq + 1,
                f"records {head_seq + 1}..{last} lie beyond the chain head ({head_seq}): "
                "inserted outside the log",
            )
        elif head_hash != self._prev:
            self._problem(last, f"record {last} does not match the chain head's hash")
        for seq in sorted(self._by_seq):
            self._problem(seq, f"a signed checkpoint names record {seq}, which is missing")
        self.report.problems.sort(key=lambda p: (p.seq is None, p.seq or 0))
        return self.report
