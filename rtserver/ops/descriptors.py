"""Size the process's file-descriptor table once, before connections arrive.

Linux grows a process's descriptor table by doubling it when a new descriptor does not fit,
and in a process with threads (aiosqlite's, the resolver's) each growth waits for an RCU grace
period with the caller stopped: 10 to 20 ms of a blocked ``accept()`` on the reference
machine, with the event loop and every room behind it. A join storm of 5,000 connections
grows the table six times. The table never shrinks, so growing it once at start-up, to what
the open-files limit allows, costs 8 bytes a descriptor and no pause later.
"""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

log = logging.getLogger(__name__)

#: The table is grown to the open-files limit, but not past this many descriptors (512 KB).
MAX_RESERVED: Final = 65_536


def reserve_descriptor_table(count: int = MAX_RESERVED) -> int:
    """Grow the descriptor table to hold ``count`` descriptors, or what the limit allows.

    The soft open-files limit is raised towards ``count`` first (within the hard limit: a
    default soft limit of 1,024 would refuse the 1,025th connection). Returns the number
    reserved. Opening a descriptor at the top of the range and closing it again leaves the
    table that size.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        soft = count if hard == resource.RLIM_INFINITY else min(count, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY:
        count = min(count, soft)
    top = count - 1
    probe = os.open(os.devnull, os.O_RDONLY)
    try:
        if top > probe:
            os.dup2(probe, top, inheritable=False)
            os.close(top)
    finally:
        os.close(probe)
    return count


async def reserved_descriptors(app: web.Application) -> AsyncIterator[None]:
    """A ``cleanup_ctx`` for a serving process: the table is grown before it listens."""
    log.debug("descriptor table sized for %d descriptors", reserve_descriptor_table())
    yield
