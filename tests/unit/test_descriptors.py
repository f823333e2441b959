"""A serving process sizes its descriptor table once, raising its soft open-files limit first.

Each case runs in a child process: the limit and the table belong to the whole process.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

#: Lowers the soft limit to ``soft``, reserves ``count`` and reports what the process has then.
CHILD = """
import json, resource, sys
from pathlib import Path
from rtserver.ops.descriptors import reserve_descriptor_table
soft, count = int(sys.argv[1]), int(sys.argv[2])
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
reserved = reserve_descriptor_table(count)
status = Path("/proc/self/status").read_text()
table = int(next(l for l in status.splitlines() if l.startswith("FDSize:")).split()[1])
print(json.dumps({"reserved": reserved, "soft": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                  "table": table}))
"""


def run_child(soft: int, count: int) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(soft), str(count)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, int] = json.loads(done.stdout)
    return result


def hard_limit() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return sys.maxsize if hard == resource.RLIM_INFINITY else hard


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/status is Linux's")
def test_the_table_holds_the_reserved_count_and_the_soft_limit_is_raised_to_it() -> None:
    count = min(4096, hard_limit())
    result = run_child(soft=256, count=count)
    assert result["reserved"] == count
    assert result["soft"] == count
    assert result["table"] >= count


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/status is Linux's")
def test_a_table_is_never_reserved_past_the_hard_limit() -> None:
    hard = hard_limit()
    if hard > 1 << 20:
        pytest.skip("the hard limit here is too large to reach")
    result = run_child(soft=256, count=hard + 1000)
    assert result["reserved"] == hard
    assert result["soft"] == hard


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/self/status is Linux's")
def test_a_soft_limit_above_the_count_is_left_as_it_is() -> None:
    soft = min(8192, hard_limit())
    result = run_child(soft=soft, count=1024)
    assert result["reserved"] == 1024
    assert result["soft"] == soft
    assert result["table"] >= 1024
