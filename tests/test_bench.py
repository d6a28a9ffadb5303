"""The benchmark stays runnable: a quick run finishes and prints its table (its numbers are the
benchmark's business, not a test's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_benchmark_runs_and_prints_the_table():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
    result = subprocess.run([sys.executable, "-m", "bench.run", "--quick"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for row in ("Proxy requests per tick", "429s received", "RSS with", "this bot", "naive"):
        assert row in result.stdout, row
