"""The built web app's files under ``/static/``.

aiohttp's own static route answers a file that is not there with an empty 404 of its own; this
one raises ``HTTPNotFound`` instead, which the JSON error middleware answers like every other
HTTP error (an ``error`` frame saying what was not found). Only regular files inside the
directory are served: no listings, no way out of it by ``..`` or a symlink.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from rtserver.transports.http import Handler

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def static_handler(root: Path = STATIC_DIR) -> Handler:
    """``GET /static/{path}``: the file at ``path`` under ``root``, or 404."""
    root = root.resolve()

    async def serve_file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["path"]
        # The file system is asked off the event loop, as aiohttp's own static route does.
        path = await asyncio.get_running_loop().run_in_executor(None, existing_file, root, name)
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    return serve_file


def existing_file(root: Path, name: str) -> Path | None:
    """The regular file ``name`` names inside ``root`` (resolved), or None."""
    if not name or "\0" in name or Path(name).is_absolute():
        return None
    try:
        path = (root / name).resolve()
    except (OSError, RuntimeError):  # a symlink loop, a name too long
        return None
    if not path.is_relative_to(root):
        return None
    try:
        return path if path.is_file() else None
    except OSError:
        return None
