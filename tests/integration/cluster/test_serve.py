"""``rtserver serve --redis URL``: a Redis that does not answer is one clear line; /readyz
follows the bus."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

from rtserver.keys import BUS
from tests.conftest import ServerFactory
from tests.fakes.drive import refusing_port
from tests.integration.cluster.redis_server import OwnRedis
from tests.integration.test_store_ops import _env, _one_clear_line
from tests.support import eventually, fast_settings

EXIT_TIMEOUT_S = 30.0


async def serve(*args: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rtserver", "serve", "--host", "127.0.0.1", "--port", "0", *args,
        cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=_env(),
    )  # fmt: skip
    try:
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            _, stderr = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


async def test_a_redis_that_does_not_answer_exits_2_in_one_line(
    tmp_path: Path, postgres_url: str
) -> None:
    with refusing_port() as port:
        url = f"redis://:hunter2@127.0.0.1:{port}/0"
        code, stderr = await serve("--db", postgres_url, "--redis", url, cwd=tmp_path)
    line = _one_clear_line(stderr)
    assert code == 2
    assert "cannot use the bus at redis://127.0.0.1:" in line
    assert "hunter2" not in stderr


async def test_redis_beside_an_sqlite_file_exits_2_naming_the_fix(tmp_path: Path) -> None:
    code, stderr = await serve(
        "--db", str(tmp_path / "x.db"), "--redis", "redis://127.0.0.1:6379/0", cwd=tmp_path
    )
    assert code == 2
    assert "--db postgresql://" in _one_clear_line(stderr)


async def test_readyz_follows_the_bus(
    start_server: ServerFactory, postgres_url: str, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    redis = OwnRedis(tmp_path)
    await redis.start()
    try:
        settings = fast_settings(postgres_url, redis_url=redis.url)
        server = await start_server(settings)
        assert server.app[BUS].shared

        async def ready() -> tuple[int, object]:
            async with http.get(server.make_url("/readyz")) as response:
                return response.status, (await response.json()).get("bus")

        assert await ready() == (200, None)
        redis.kill()
        await eventually(lambda: not server.app[BUS].healthy)
        assert await ready() == (503, "down")
        await redis.start()
        await eventually(lambda: server.app[BUS].healthy, timeout=20)
        assert await ready() == (200, None)
    finally:
        redis.kill()
