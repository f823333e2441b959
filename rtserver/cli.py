"""The ``rtserver`` command: ``serve`` runs the server, ``models`` shows what is configured."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Sequence

from aiohttp import web

from rtserver.config import Settings, build_settings, read_config_file
from rtserver.errors import RtError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtserver", description="Real-time rooms for watching language models answer."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--db", help="SQLite database file (default ./rtserver.db)")
    serve.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="how much to log (default INFO)",
    )
    for command in (serve, commands.add_parser("models", help="list configured models")):
        command.add_argument(
            "--config", help="TOML config file (default: $RTSERVER_CONFIG, if set)"
        )
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config or os.environ.get("RTSERVER_CONFIG")
    config = read_config_file(path) if path else None
    return build_settings(
        config,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        db_path=getattr(args, "db", None),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
        if args.command == "models":
            from rtserver.providers.registry import describe_models

            print(describe_models(settings, os.environ))
            return 0
        return _serve(settings, args.log_level)
    except RtError as exc:
        print(f"rtserver: {exc}", file=sys.stderr)
        return 2


def _serve(settings: Settings, log_level: str) -> int:
    # The log set-up lasts as long as the server: an embedding caller (or a test run) gets its
    # root logger back as it was.
    root = logging.getLogger()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(log_level)
    try:
        return _run(settings)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def _run(settings: Settings) -> int:
    from rtserver.app import create_app

    address = f"http://{settings.host}:{settings.port}/"
    try:
        # run_app turns SIGINT and SIGTERM into a graceful shutdown: streams end as
        # interrupted and are persisted, and sockets close with 1001.
        web.run_app(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            shutdown_timeout=10,
            # Called once the socket is bound, so the line is true when it is printed; the
            # banner names the bound port, which --port 0 leaves to the system.
            print=lambda banner: print(
                f"rtserver: serving on {_bound(banner, address)} (db {settings.db_path})"
            ),
        )
    except OSError as exc:
        print(f"rtserver: cannot serve on {address}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


def _bound(banner: str, requested: str) -> str:
    """The address in aiohttp's start-up banner, as ``http://host:port/``."""
    found = re.search(r"https?://[^\s,]+", banner)
    return found.group(0).rstrip("/") + "/" if found else requested
