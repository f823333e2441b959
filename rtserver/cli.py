"""The ``rtserver`` command: ``serve`` runs the server, ``models`` shows what is configured,
``chat`` joins a room in the terminal."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from rtserver.cli_token import issue_token, token_arguments
from rtserver.config import Settings, build_settings, read_config_file
from rtserver.errors import RtError
from rtserver.ops.logging import LogFormat
from rtserver.ops.logging import configure as configure_logging


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rtserver", description="Real-time rooms for watching language models answer."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument(
        "--db",
        help="SQLite database file (default ./rtserver.db), or a postgresql:// URL",
    )
    serve.add_argument(
        "--redis",
        metavar="URL",
        help="Redis shared by several nodes (redis://host:6379/0); needs --db postgresql://",
    )
    serve.add_argument(
        "--open",
        action="store_true",
        help="serve without room tokens on a host other than loopback, on purpose",
    )
    serve.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="how much to log (default INFO)",
    )
    serve.add_argument(
        "--log-format",
        default="text",
        choices=("text", "json"),
        help="text lines, or one JSON object a line with room/participant/stream ids",
    )
    _add_chat(commands)
    token = commands.add_parser("token", help="print a room token signed with the secret")
    token_arguments(token)
    for command in (serve, commands.add_parser("models", help="list configured models"), token):
        command.add_argument(
            "--config", help="TOML config file (default: $RTSERVER_CONFIG, if set)"
        )
    return parser


def _add_chat(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = commands.add_parser("chat", help="join a room in the terminal")
    chat.add_argument("base_url", metavar="BASE_URL", help="the server, e.g. http://127.0.0.1:8080")
    chat.add_argument("room", metavar="ROOM", help="room id")
    chat.add_argument("--name", help="your name in the room")
    chat.add_argument("--token", help="access token (or env RTSERVER_TOKEN)")
    chat.add_argument(
        "--models", type=_model_list, help="comma-separated model ids (default: the room's)"
    )


def _model_list(value: str) -> list[str]:
    models = [m.strip() for m in value.split(",") if m.strip()]
    if not models:
        raise argparse.ArgumentTypeError("name at least one model")
    return models


def _settings(args: argparse.Namespace) -> Settings:
    path = args.config or os.environ.get("RTSERVER_CONFIG")
    config = read_config_file(path) if path else None
    return build_settings(
        config,
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        db_path=getattr(args, "db", None),
        open_mode=getattr(args, "open", False),
        redis_url=getattr(args, "redis", None),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "chat":
        return _chat(args)
    try:
        settings = _settings(args)
        if args.command == "models":
            from rtserver.providers.registry import describe_models
            from rtserver.turns.router import describe_routers

            print(describe_models(settings, os.environ))
            routers = describe_routers(settings.models)
            if routers:
                print()
                print(routers)
            return 0
        if args.command == "token":
            print(issue_token(args, settings.auth.secret_env, os.environ))
            return 0
        return _serve(settings, args.log_level, args.log_format)
    except RtError as exc:
        print(f"rtserver: {exc}", file=sys.stderr)
        return 2


def _chat(args: argparse.Namespace) -> int:
    try:
        from rtserver.client.tui import run_chat
    except ImportError:
        print("rtserver: `chat` needs Textual: pip install 'rtserver[chat]'", file=sys.stderr)
        return 2
    token = args.token or os.environ.get("RTSERVER_TOKEN")
    return run_chat(args.base_url, args.room, name=args.name, token=token, models=args.models)


def _serve(settings: Settings, log_level: str, log_format: LogFormat) -> int:
    # The log set-up lasts as long as the server: an embedding caller (or a test run) gets its
    # root logger back as it was.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(log_level, log_format)
    try:
        return _run(settings)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _run(settings: Settings) -> int:
    from rtserver.app import create_app
    from rtserver.bus.selection import describe_redis
    from rtserver.ops.accesslog import RedactingAccessLogger
    from rtserver.ops.serving import serve
    from rtserver.store.lock import DatabaseLock
    from rtserver.store.selection import describe_db
    from rtserver.transports.site import listen

    address = f"http://{settings.host}:{settings.port}/"
    # Before anything listens: a second server on the same database exits 2, naming the first.
    lock = DatabaseLock.acquire(settings.db_path)

    def serving(bound: str) -> None:
        # Called once every socket accepts, so the line is true when it is printed; it names
        # the bound port, which --port 0 leaves to the system.
        if lock is not None:
            lock.describe(bound)
        bus = f", bus {describe_redis(settings.redis_url)}" if settings.redis_url else ""
        print(f"rtserver: serving on {bound} (db {describe_db(settings.db_path)}{bus})")

    try:
        app = create_app(settings, own_process=True)
        try:
            sockets = listen(settings.host, settings.port)
        except OSError as exc:
            print(f"rtserver: cannot serve on {address}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        try:
            # SIGINT and SIGTERM shut down gracefully: streams end as interrupted and are
            # persisted, and sockets close with 1001.
            serve(app, sockets, access_log_class=RedactingAccessLogger, on_serving=serving)
        finally:
            for sock in sockets:
                sock.close()
    finally:
        if lock is not None:
            lock.release()
    return 0
