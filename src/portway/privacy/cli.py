"""`portway audit verify|export|checkpoint`, `portway users delete-data`, `portway teams`,
`portway retention purge`: straight to the database, like `portway keys`.

They read the same settings as `portway serve`, so they sign and verify audit checkpoints
with the same server key (``server_key``, ``$PORTWAY_SERVER_KEY`` or ``server_key_file``).
The CLI cannot reach a running server's in-memory cache: delete a user's data through the
admin API (`DELETE /v1/admin/users/{user}/data`) to purge the cache too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from portway.config import Settings, load_settings
from portway.privacy.erasers import build_erasers
from portway.privacy.service import PrivacyService
from portway.retention import Retention, parse_retention
from portway.retrieval.files import FileService
from portway.retrieval.storage import FileStorage
from portway.security.audit_log import AuditLog
from portway.security.server_keys import load_server_key
from portway.store import Database
from portway.store.files import FileRepository
from portway.store.keys import KeyRepository
from portway.store.privacy import ContentOwnerRepository, TeamPolicyRepository

CLI_ACTOR = "cli"


def _print(payload: Any) -> None:
    print(json.dumps(payload, indent=2))


def _run(args: argparse.Namespace, work: Callable[[Settings, Database], Awaitable[int]]) -> int:
    settings = load_settings(args.config)

    async def main() -> int:
        database = Database(settings.database_url)
        try:
            await database.start()
            return await work(settings, database)
        finally:
            await database.close()

    return asyncio.run(main())


def _audit(settings: Settings, database: Database) -> AuditLog:
    return AuditLog.build(settings.audit, database, load_server_key(settings))


def _privacy(settings: Settings, database: Database) -> PrivacyService:
    files = FileService(
        FileRepository(database),
        FileStorage(settings.files.storage_dir, settings.files.max_bytes),
        settings.files,
    )
    return PrivacyService(
        ContentOwnerRepository(database),
        TeamPolicyRepository(database),
        KeyRepository(database),
        build_erasers(database, files),
        settings.privacy,
        _audit(settings, database),
    )


def _verify(args: argparse.Namespace) -> int:
    async def work(settings: Settings, database: Database) -> int:
        report = await _audit(settings, database).verify()
        if args.json:
            _print(report.as_json())
        if report.ok:
            if not args.json:
                print(
                    f"audit log OK: {report.records} records, "
                    f"{report.checkpoints} signed checkpoints verified"
                )
            return 0
        if not args.json:
            first = report.first
            assert first is not None
            print(f"audit log TAMPERED: {first.message}", file=sys.stderr)
            for problem in report.problems[1:20]:
                print(f"  also: {problem.message}", file=sys.stderr)
        return 1

    return _run(args, work)


def _export(args: argparse.Namespace) -> int:
    async def work(settings: Settings, database: Database) -> int:
        lines = [line + "\n" async for line in _audit(settings, database).export()]
        if args.output:
            await asyncio.to_thread(Path(args.output).write_text, "".join(lines), "utf-8")
        else:
            sys.stdout.writelines(lines)
        return 0

    return _run(args, work)


def _checkpoint(args: argparse.Namespace) -> int:
    async def work(settings: Settings, database: Database) -> int:
        checkpoint = await _audit(settings, database).checkpoint()
        if checkpoint is None:
            print("nothing new to checkpoint")
        else:
            print(f"signed checkpoint at record {checkpoint.seq}")
        return 0

    return _run(args, work)


def _delete_user(args: argparse.Namespace) -> int:
    async def work(settings: Settings, database: Database) -> int:
        _print(await _privacy(settings, database).delete_user_data(args.user, CLI_ACTOR))
        return 0

    return _run(args, work)


def _purge(args: argparse.Namespace) -> int:
    async def work(settings: Settings, database: Database) -> int:
        privacy = _privacy(settings, database)
        counts = await privacy.purge()
        await _audit(settings, database).record("retention.purge", CLI_ACTOR, None, counts)
        _print({"deleted": counts})
        return 0

    return _run(args, work)


def _team_set(args: argparse.Namespace) -> int:
    async def work(settings: Settings, database: Database) -> int:
        retention = None if args.retention == "default" else parse_retention(args.retention)
        policy = await TeamPolicyRepository(database).set(args.team, retention)
        await _audit(settings, database).record(
            "team.update", CLI_ACTOR, args.team, {"retention": retention}
        )
        _print({"team": policy.team_id, "retention": Retention.of(policy.retention).label})
        return 0

    return _run(args, work)


def _team_list(args: argparse.Namespace) -> int:
    async def work(settings: Settings, database: Database) -> int:
        policies = await TeamPolicyRepository(database).list()
        _print(
            [{"team": p.team_id, "retention": Retention.of(p.retention).label} for p in policies]
        )
        return 0

    return _run(args, work)


def add_commands(commands: Any) -> None:
    def with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--config", help="YAML config file (default $PORTWAY_CONFIG)")
        return parser

    audit = commands.add_parser("audit", help="the tamper-evident audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = with_config(audit_commands.add_parser("verify", help="check the hash chain"))
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(handler=_verify)
    export = with_config(audit_commands.add_parser("export", help="every record as JSONL"))
    export.add_argument("--output", "-o", help="file to write (default stdout)")
    export.set_defaults(handler=_export)
    with_config(
        audit_commands.add_parser("checkpoint", help="sign the chain head now")
    ).set_defaults(handler=_checkpoint)

    users = commands.add_parser("users", help="end users' stored data")
    user_commands = users.add_subparsers(dest="users_command", required=True)
    delete = with_config(user_commands.add_parser("delete-data", help="delete a user's content"))
    delete.add_argument("user")
    delete.set_defaults(handler=_delete_user)

    teams = commands.add_parser("teams", help="team policies (retention)")
    team_commands = teams.add_subparsers(dest="teams_command", required=True)
    setter = with_config(team_commands.add_parser("set", help="set a team's retention"))
    setter.add_argument("team")
    setter.add_argument("--retention", required=True, help="none | DAYS | default")
    setter.set_defaults(handler=_team_set)
    with_config(team_commands.add_parser("list", help="list team policies")).set_defaults(
        handler=_team_list
    )

    retention = commands.add_parser("retention", help="retention of stored content")
    retention_commands = retention.add_subparsers(dest="retention_command", required=True)
    with_config(
        retention_commands.add_parser("purge", help="delete content past its retention now")
    ).set_defaults(handler=_purge)
