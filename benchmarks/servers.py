"""One benchmark server in its own process, pinned to one core.

    python -m benchmarks.servers rtserver --core 0 --config bench.toml --db bench.db
    python -m benchmarks.servers bare --core 0
    python -m benchmarks.servers socketio --core 0

It listens on a free loopback port, prints ``READY <port>`` once it accepts connections, and
stops gracefully on SIGTERM. rtserver is built from its config file exactly as ``rtserver serve``
builds it, so a setting the server does not know fails here as it would there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from benchmarks.peers import bare_app, socketio_app

KINDS = ("rtserver", "bare", "socketio")
#: Thousands of clients connect at once; the default backlog of 128 would drop some SYNs.
BACKLOG = 4096


def _app(args: argparse.Namespace) -> web.Application:
    if args.kind == "bare":
        return bare_app()
    if args.kind == "socketio":
        return socketio_app()
    from rtserver.app import create_app
    from rtserver.config import build_settings, read_config_file

    config = read_config_file(args.config)
    settings = build_settings(config, env={}, host="127.0.0.1", port=0, db_path=args.db)
    return create_app(settings, env={}, own_process=True)


async def _serve(app: web.Application) -> None:
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=BACKLOG)
    await site.start()
    port = runner.addresses[0][1]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"READY {port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.servers")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--core", type=int, help="the CPU core to run on")
    parser.add_argument("--config", help="rtserver: the TOML config file")
    parser.add_argument("--db", default=":memory:", help="rtserver: the SQLite file")
    args = parser.parse_args(argv)
    if args.kind == "rtserver" and not args.config:
        parser.error("rtserver needs --config")
    if args.core is not None:
        os.sched_setaffinity(0, {args.core})
    asyncio.run(_serve(_app(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
