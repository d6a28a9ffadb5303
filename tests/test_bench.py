"""The benchmark stays runnable: a quick run finishes and prints its table (its numbers are the
benchmark's business, not a test's)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)  # the whole quick benchmark: about a minute, more on a busy machine
def test_quick_benchmark_runs_and_prints_the_table():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for row in (
        "Proxy requests per tick",
        "429s received",
        "RSS with",
        "this bot",
        "naive",
        "progress every",
        "Ack of /imagine",
        "Ack of a button press",
        "not acked within 3 s",
        "CPU seconds of the bot per 1,000 task updates",
        "Event-loop lag",
        "jobs with 2 messages / messages given up / stale",
    ):
        assert row in result.stdout, row


@pytest.mark.timeout(180)
def test_the_re_encoding_benchmarks_run_and_print_their_tables():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MJBOT_")}
    for command, rows in (
        (["bench.media_acks", "--quick"], ("Ack of /jobs every 50 ms", "re-encoded images on Discord")),
        (["bench.media", "--side", "1024"], ("wall time", "event-loop lag, max")),
    ):
        result = subprocess.run(
            [sys.executable, "-m", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=170
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        for row in rows:
            assert row in result.stdout, row


async def test_the_loop_lag_monitor_sees_a_blocking_call():
    """The bot's 10 ms timer reports how late it fired: a call that blocks the loop shows up in the
    worst lag and in the histogram ``/metrics`` serves."""
    import asyncio
    import time

    from prometheus_client import CollectorRegistry, generate_latest

    from bot.ops.metrics import LoopLag

    registry = CollectorRegistry()
    lag = LoopLag(registry)
    lag.start()

    def fired() -> float:
        return registry.get_sample_value("mjbot_event_loop_lag_seconds_count") or 0.0

    async def until(condition) -> None:  # polled: the monitor has nothing to wait on
        async with asyncio.timeout(5):
            while not condition():
                await asyncio.sleep(0.005)

    try:
        await until(lambda: fired() >= 2)  # the timer runs on a free loop
        time.sleep(0.08)  # noqa: ASYNC251 - the blocking call under test
        await until(lambda: lag.worst >= 0.05)  # the next firing reports it
    finally:
        await lag.stop()
    assert lag.worst >= 0.05
    text = generate_latest(registry).decode()
    assert "mjbot_event_loop_lag_seconds_bucket" in text
    assert "mjbot_event_loop_lag_max_seconds" in text
