"""The audit log in the database (SQLite and PostgreSQL): appends chain, the triggers refuse
UPDATE and DELETE, and ``verify`` names the first edited, deleted or reordered record."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from portway.config import AuditConfig
from portway.security.audit_log import AuditLog
from portway.store import Database
from portway.store.audit import AuditRepository

KEY = b"audit-test-key"


def audit_log(database: Database) -> AuditLog:
    return AuditLog(AuditRepository(database), AuditConfig(requests=True), KEY)


async def filled(database: Database, n: int = 6) -> AuditLog:
    log = audit_log(database)
    for i in range(1, n + 1):
        await log.record("key.create", "master", f"key_{i}", {"i": i, "name": f"n{i}"})
    return log


async def drop_triggers(database: Database) -> None:
    """What an attacker with database access would do first."""
    async with database.connect() as connection:
        if database.dialect == "postgresql":
            await connection.execute(
                text("DROP TRIGGER audit_records_append_only ON audit_records")
            )
        else:
            await connection.execute(text("DROP TRIGGER audit_records_no_update"))
            await connection.execute(text("DROP TRIGGER audit_records_no_delete"))


async def test_appends_form_a_valid_chain(database: Database) -> None:
    log = await filled(database)
    log.request("key:key_1", "fake-gpt", {"model": "fake-gpt", "guardrails": ["pii:redact"]})
    assert await log.flush() == 1
    assert await log.checkpoint() is not None
    assert await log.checkpoint() is None  # nothing new since
    report = await log.verify()
    assert report.ok, report.problems
    assert report.records == 7 and report.checkpoints == 1
    records = await log.repository.page(0, 100)
    assert [r.seq for r in records] == list(range(1, 8))
    assert records[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert records[-1].kind == "request"
    assert json.loads(records[-1].details)["guardrails"] == ["pii:redact"]


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_records SET actor = 'x'", "DELETE FROM audit_records"]
)
async def test_the_database_refuses_to_change_records(database: Database, statement: str) -> None:
    await filled(database, 2)
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.connect() as connection:
            await connection.execute(text(statement))
    assert (await audit_log(database).verify()).ok


async def test_an_edited_row_is_caught(database: Database) -> None:
    log = await filled(database)
    await drop_triggers(database)
    async with database.connect() as connection:
        await connection.execute(
            text("UPDATE audit_records SET details = :d WHERE seq = 4"), {"d": '{"i":40}'}
        )
    report = await log.verify()
    assert not report.ok
    assert report.first is not None and report.first.seq == 4
    assert "record 4 was altered" in report.first.message


async def test_a_deleted_row_is_caught(database: Database) -> None:
    log = await filled(database)
    await drop_triggers(database)
    async with database.connect() as connection:
        await connection.execute(text("DELETE FROM audit_records WHERE seq = 3"))
    report = await log.verify()
    assert report.first is not None and report.first.seq == 3
    assert "record 3 is missing" in report.first.message


async def test_a_deleted_last_row_is_caught(database: Database) -> None:
    log = await filled(database)
    await drop_triggers(database)
    async with database.connect() as connection:
        await connection.execute(text("DELETE FROM audit_records WHERE seq = 6"))
    report = await log.verify()
    assert report.first is not None and report.first.seq == 6


async def test_a_reordered_pair_is_caught(database: Database) -> None:
    log = await filled(database)
    await drop_triggers(database)
    async with database.connect() as connection:
        for old, new in ((2, -1), (3, 2), (-1, 3)):
            await connection.execute(
                text("UPDATE audit_records SET seq = :new WHERE seq = :old"),
                {"new": new, "old": old},
            )
    report = await log.verify()
    assert report.first is not None and report.first.seq == 2


async def test_a_rewritten_chain_fails_the_signed_checkpoint(database: Database) -> None:
    """Recomputing every hash after an edit passes the chain check but not the checkpoint."""
    from portway.security.audit_chain import record_hash

    log = await filled(database, 4)
    await log.checkpoint()
    await drop_triggers(database)
    records = await log.repository.page(0, 100)
    prev = records[0].hash
    async with database.connect() as connection:
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
            await connection.execute(
                text(
                    "UPDATE audit_records SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"
                ),
                {"a": actor, "p": prev, "h": digest, "s": record.seq},
            )
            prev = digest
        await connection.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    report = await log.verify()
    assert not report.ok
    assert any("checkpoint" in p.message for p in report.problems)


async def test_export_is_one_json_line_per_record(database: Database) -> None:
    log = await filled(database, 3)
    lines = [line async for line in log.export()]
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]
    assert json.loads(lines[0])["details"] == {"i": 1, "name": "n1"}


def test_cli_verify_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`portway audit verify` exits 0 on a good log, 1 naming the first bad record."""
    import sqlite3

    from portway.cli import main

    db_file = tmp_path / "portway.db"
    config = tmp_path / "portway.yaml"
    config.write_text(
        f"database_url: sqlite:///{db_file}\n"
        f"server_key_file: {tmp_path / 'server.key'}\n"
        f"files: {{storage_dir: {tmp_path / 'files'}}}\n"
    )
    assert main(["teams", "set", "growth", "--retention", "30", "--config", str(config)]) == 0
    assert main(["teams", "set", "ops", "--retention", "none", "--config", str(config)]) == 0
    assert main(["audit", "checkpoint", "--config", str(config)]) == 0
    assert (tmp_path / "server.key").stat().st_mode & 0o777 == 0o600
    capsys.readouterr()
    assert main(["audit", "verify", "--config", str(config)]) == 0
    assert "audit log OK: 2 records, 1 signed checkpoints" in capsys.readouterr().out

    export = tmp_path / "audit.jsonl"
    assert main(["audit", "export", "-o", str(export), "--config", str(config)]) == 0
    exported = [json.loads(line) for line in export.read_text().splitlines()]
    assert [(r["action"], r["subject"], r["actor"]) for r in exported] == [
        ("team.update", "growth", "cli"),
        ("team.update", "ops", "cli"),
    ]

    with sqlite3.connect(db_file) as connection:  # tamper with a copy of what an attacker sees
        connection.execute("DROP TRIGGER audit_records_no_update")
        connection.execute("UPDATE audit_records SET subject = 'other' WHERE seq = 1")
    assert main(["audit", "verify", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "audit log TAMPERED: record 1 was altered" in err
