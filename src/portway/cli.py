"""The ``portway`` command line: ``portway serve`` and friends."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from portway.config import ConfigError, Settings, load_settings


def _configure_logging(level: str, log_format: str = "text") -> None:
    from portway.observability.logs import configure_logging

    configure_logging(level, log_format)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from portway.app import create_app
    from portway.serving import DrainingServer

    settings = load_settings(args.config)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    if overrides:
        settings = Settings.model_validate(settings.model_dump() | overrides)
    _configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings)
    services = app.state.services

    def drain() -> None:
        services.draining = True

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=args.access_log,
        # JSON logs: uvicorn's loggers propagate to the root handler instead of their own.
        **({"log_config": None} if settings.log_format == "json" else {}),
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=settings.server.drain_timeout_seconds,
    )
    server = DrainingServer(
        config, on_drain=drain, unready_delay=settings.server.unready_delay_seconds
    )
    server.run()
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8080)")
    serve.add_argument("--config", help="YAML config file (default $PORTWAY_CONFIG)")
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.set_defaults(handler=_serve)
    db = commands.add_parser("db", help="manage the database schema")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply pending migrations")
    upgrade.add_argument("--config", help="YAML config file (default $PORTWAY_CONFIG)")
    upgrade.set_defaults(handler=_db_upgrade)
    from portway.accounting.cli import add_commands

    add_commands(commands)
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
