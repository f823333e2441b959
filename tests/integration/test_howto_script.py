"""The how-to's first script runs as written against a real server."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

from rtserver.config import DEMO_MODELS, Settings
from tests.conftest import ServerFactory

HOWTO = Path(__file__).parents[2] / "docs" / "howto" / "script-a-room.md"


async def test_the_ask_once_script_prints_every_models_answer(
    start_server: ServerFactory, db_path: str
) -> None:
    server = await start_server(Settings(db_path=db_path, models=DEMO_MODELS))
    script = re.findall(r"```python\n(.*?)```", HOWTO.read_text(), re.S)[0]
    script = script.replace("http://127.0.0.1:8080", str(server.make_url("")).rstrip("/"))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    text = out.decode()
    assert text.count("--- demo\n") == 2
    assert text.count("--- demo-fast\n") == 2
    assert "salty" in text
    assert "meander" in text
