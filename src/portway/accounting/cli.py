"""`portway keys ...`, `portway budgets ...` and `portway usage`: straight to the database.

These commands read the same settings as `portway serve` (``--config`` /
``PORTWAY_CONFIG`` / ``PORTWAY_DATABASE_URL``) and migrate the schema if needed, so they
work with or without a running server. A revoked or rotated key stops working on running
servers within ``keys.cache_ttl_seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from portway.accounting.pricing import nanos
from portway.accounting.reports import parse_group_by, present, to_csv, to_table, usage_filter
from portway.config import ConfigError, load_settings
from portway.keys.render import budget_object, key_object, key_summary
from portway.keys.service import BudgetSpec, KeyService
from portway.periods import PERIODS
from portway.retention import parse_retention
from portway.security.audit_log import AuditLog
from portway.security.server_keys import load_server_key
from portway.store import Database
from portway.store.budgets import BudgetRepository
from portway.store.keys import KeyFields, KeyRepository
from portway.store.usage import UsageRepository


def _print(payload: Any) -> None:
    print(json.dumps(payload, indent=2, sort_keys=False))


def _run(args: argparse.Namespace, work: Callable[[Database], Awaitable[int]]) -> int:
    settings = load_settings(args.config)

    async def main() -> int:
        database = Database(settings.database_url)
        try:
            await database.start()
            return await work(database)
        finally:
            await database.close()

    return asyncio.run(main())


def _retention(value: str | None) -> str | None:
    try:
        return parse_retention(value)
    except ValueError as exc:
        raise ConfigError(f"--retention: {exc}") from None


async def _audit(
    args: argparse.Namespace, database: Database, action: str, subject: str, details: Any
) -> None:
    """Admin actions from the CLI are audited like the admin API's (actor ``cli``)."""
    settings = load_settings(args.config)
    audit = AuditLog.build(settings.audit, database, load_server_key(settings))
    await audit.record(action, "cli", subject, details)


def _keys(database: Database) -> KeyService:
    return KeyService(KeyRepository(database), BudgetRepository(database))


def _metadata(pairs: list[str] | None) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        if not sep:
            raise ConfigError(f"--metadata expects KEY=VALUE, got {pair!r}")
        metadata[name] = value
    return metadata


def _keys_create(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        import time

        expires = time.time() + args.expires_in if args.expires_in else None
        fields = KeyFields(
            name=args.name,
            user_id=args.user,
            team_id=args.team,
            allowed_models=tuple(args.models.split(",")) if args.models else None,
            rpm=args.rpm,
            tpm=args.tpm,
            priority=args.priority,
            no_store=args.no_store,
            retention=_retention(args.retention),
            metadata=_metadata(args.metadata),
            expires_at=expires,
        )
        budget = BudgetSpec(nanos(args.budget), args.period) if args.budget is not None else None
        record, secret = await _keys(database).create(fields, budget)
        await _audit(args, database, "key.create", record.id, key_summary(record))
        _print(key_object(record, secret))
        print("store the key now: it is not shown again", file=sys.stderr)
        return 0

    return _run(args, work)


def _keys_list(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        records = await KeyRepository(database).list(user_id=args.user, team_id=args.team)
        if args.json:
            _print([key_object(record) for record in records])
            return 0
        rows = [key_object(record) for record in records]
        header = f"{'id':<26} {'prefix':<12} {'status':<8} {'user':<16} {'team':<16} name"
        print(header)
        for row in rows:
            print(
                f"{row['id']:<26} {row['prefix']:<12} {row['status']:<8} "
                f"{row['user'] or '-':<16} {row['team'] or '-':<16} {row['name'] or '-'}"
            )
        return 0

    return _run(args, work)


def _key_action(action: str) -> Callable[[argparse.Namespace], int]:
    def command(args: argparse.Namespace) -> int:
        async def work(database: Database) -> int:
            service = _keys(database)
            secret = None
            if action == "show":
                record = await service.keys.get(args.key_id)
            elif action == "revoke":
                record = await service.revoke(args.key_id)
            else:
                rotated = await service.rotate(args.key_id)
                record, secret = rotated if rotated else (None, None)
            if record is None:
                print(f"portway: no active key with id {args.key_id}", file=sys.stderr)
                return 1
            if action != "show":
                await _audit(args, database, f"key.{action}", record.id, {})
            _print(key_object(record, secret))
            return 0

        return _run(args, work)

    return command


def _budgets_set(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        budget = await BudgetRepository(database).set(
            args.scope, args.subject, nanos(args.amount), args.period
        )
        await _audit(
            args,
            database,
            "budget.set",
            f"{args.scope}:{args.subject}",
            {"max_budget": args.amount, "period": args.period},
        )
        _print(budget_object(budget))
        return 0

    return _run(args, work)


def _budgets_list(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        _print([budget_object(b) for b in await BudgetRepository(database).list()])
        return 0

    return _run(args, work)


def _usage(args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        params = {
            "key": args.key,
            "user": args.user,
            "team": args.team,
            "model": args.model,
            "since": args.since,
            "until": args.until,
        }
        try:
            where = usage_filter(params)
            group_by = parse_group_by(args.group_by)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        items = [present(s) for s in await UsageRepository(database).summary(where, group_by)]
        if args.format == "csv":
            sys.stdout.write(to_csv(items, group_by))
        elif args.format == "json":
            _print(items)
        else:
            print(to_table(items, group_by))
        return 0

    return _run(args, work)


def add_commands(commands: Any) -> None:
    """Register ``keys``, ``budgets`` and ``usage`` on the top-level sub-parsers."""

    def with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--config", help="YAML config file (default $PORTWAY_CONFIG)")
        return parser

    keys = commands.add_parser("keys", help="manage virtual keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = with_config(key_commands.add_parser("create", help="issue a key (shown once)"))
    create.add_argument("--name")
    create.add_argument("--user")
    create.add_argument("--team")
    create.add_argument("--models", help="comma-separated model names or globs")
    create.add_argument("--rpm", type=int)
    create.add_argument("--tpm", type=int)
    create.add_argument("--budget", type=float, help="max spend in USD per period")
    create.add_argument("--period", choices=PERIODS, default="monthly")
    create.add_argument("--priority", type=int, default=0)
    create.add_argument("--expires-in", type=float, help="seconds until the key expires")
    create.add_argument("--metadata", action="append", help="KEY=VALUE (repeatable)")
    create.add_argument("--no-store", action="store_true", help="zero data retention")
    create.add_argument("--retention", help="none (zero retention) or DAYS; default: team's")
    create.set_defaults(handler=_keys_create)
    listing = with_config(key_commands.add_parser("list", help="list keys"))
    listing.add_argument("--user")
    listing.add_argument("--team")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_keys_list)
    for action, text in (("show", "show a key"), ("revoke", "revoke"), ("rotate", "new secret")):
        parser = with_config(key_commands.add_parser(action, help=text))
        parser.add_argument("key_id")
        parser.set_defaults(handler=_key_action(action))

    budgets = commands.add_parser("budgets", help="budgets for users and teams")
    budget_commands = budgets.add_subparsers(dest="budgets_command", required=True)
    setter = with_config(budget_commands.add_parser("set", help="create or change a budget"))
    setter.add_argument("scope", choices=("user", "team", "key"))
    setter.add_argument("subject", help="user id, team id or key id")
    setter.add_argument("amount", type=float, help="USD per period")
    setter.add_argument("--period", choices=PERIODS, default="monthly")
    setter.set_defaults(handler=_budgets_set)
    with_config(budget_commands.add_parser("list", help="list budgets")).set_defaults(
        handler=_budgets_list
    )

    usage = with_config(commands.add_parser("usage", help="usage and cost report"))
    for name in ("key", "user", "team", "model"):
        usage.add_argument(f"--{name}")
    usage.add_argument("--since", help="epoch seconds or ISO date/time (UTC)")
    usage.add_argument("--until", help="epoch seconds or ISO date/time (UTC)")
    usage.add_argument("--group-by", default="key", help="key,user,team,model,deployment,day")
    usage.add_argument("--format", choices=("table", "csv", "json"), default="table")
    usage.set_defaults(handler=_usage)
