"""The ``portway`` command line: ``portway serve`` and friends."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from portway.config import ConfigError, Settings, format_validation_error, load_settings


def _configure_logging(level: str, log_format: str = "text") -> None:
    from portway.observability.logs import configure_logging

    configure_logging(level, log_format)


def _serve(args: argparse.Namespace) -> int:
    from portway.processes.supervisor import STARTUP_FAILURE, Supervisor, resolve_workers
    from portway.serving import serve

    settings = load_settings(args.config)
    overrides: dict[str, object] = {
        k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None
    }
    if args.workers is not None:
        overrides["server"] = {**settings.server.model_dump(), "workers": args.workers}
    if overrides:
        try:
            settings = Settings.model_validate(settings.model_dump() | overrides)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, "the command line")) from None
    _configure_logging(settings.log_level, settings.log_format)
    workers = resolve_workers(settings.server.workers)
    server = settings.server.model_copy(update={"workers": workers})
    settings = settings.model_copy(update={"server": server})
    if workers > 1:
        return Supervisor(settings, workers, access_log=args.access_log).run()
    return 0 if serve(settings, access_log=args.access_log) else STARTUP_FAILURE


def _db_upgrade(args: argparse.Namespace) -> int:
    import asyncio

    from portway.store import Database
    from portway.store.migrate import head_revision

    settings = load_settings(args.config)

    async def run() -> None:
        database = Database(settings.database_url)
        try:
            await database.start()
        finally:
            await database.close()

    asyncio.run(run())
    print(f"database at revision {head_revision()}")
    return 0


def _workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(
            f"expected a number of at least 1 or `auto`, not {value!r}"
        )
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8080)")
    serve.add_argument("--config", help="YAML config file (default $PORTWAY_CONFIG)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--workers",
        type=_workers,
        help="processes sharing the port: a number or `auto` (one per core); default 1 "
        "(or server.workers in the config)",
    )
    serve.set_defaults(handler=_serve)
    db = commands.add_parser("db", help="manage the database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending migrations")
    upgrade.add_argument("--config", help="YAML config file (default $PORTWAY_CONFIG)")
    upgrade.set_defaults(handler=_db_upgrade)
    from portway.accounting.cli import add_commands
    from portway.privacy.cli import add_commands as add_privacy_commands

    add_commands(commands)
    add_privacy_commands(commands)
    from portway.sketch.cli import add_command as add_sketch

    add_sketch(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"portway: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
