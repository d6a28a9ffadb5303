"""The per-channel write budget: never over the limit, latest state only, urgent first, channels
independent."""

from __future__ import annotations

import asyncio
import time

from bot.jobs.scheduler import WriteScheduler


class Writes:
    """Records each write (key, channel, time); ``gate`` holds writes back until a test opens it."""

    def __init__(self) -> None:
        self.done: list[tuple[str, float]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.changed = asyncio.Condition()

    async def run(self, key: str) -> tuple[str, bool]:
        await self.gate.wait()
        async with self.changed:
            self.done.append((key, time.monotonic()))
            self.changed.notify_all()
        return f"wrote {key}", not key.startswith("noop")

    async def wait_count(self, count: int, timeout: float = 5.0) -> None:
        async with self.changed:
            await asyncio.wait_for(self.changed.wait_for(lambda: len(self.done) >= count), timeout)

    def keys(self) -> list[str]:
        return [key for key, _ in self.done]


async def test_never_more_than_the_limit_in_a_window():
    writes = Writes()
    scheduler = WriteScheduler(writes.run, limit=2, per_s=0.3, margin_s=0.0)
    results = [scheduler.submit(1, f"job{n}") for n in range(6)]
    assert await asyncio.gather(*results) == [f"wrote job{n}" for n in range(6)]
    times = [t for _, t in writes.done]
    for i in range(len(times) - 2):  # any 3 consecutive writes span at least one window
        assert times[i + 2] - times[i] >= 0.3 - 0.01
    await scheduler.close()


async def test_writes_that_did_nothing_do_not_spend_the_budget():
    writes = Writes()
    scheduler = WriteScheduler(writes.run, limit=1, per_s=30.0, margin_s=0.0)
    await asyncio.gather(*(scheduler.submit(1, f"noop{n}") for n in range(5)))
    await asyncio.wait_for(scheduler.submit(1, "real"), 1.0)  # no 30 s wait
    await scheduler.close()


async def test_a_waiting_job_is_written_once_with_its_latest_state():
    writes = Writes()
    writes.gate.clear()
    scheduler = WriteScheduler(writes.run, limit=100, per_s=1.0)
    first = scheduler.submit(1, "busy")  # taken by the worker, held at the gate
    await asyncio.sleep(0)
    futures = [scheduler.submit(1, "job") for _ in range(5)]  # five updates while it waits
    assert all(f is futures[0] for f in futures) and scheduler.queued(1) == 1
    writes.gate.set()
    await asyncio.gather(first, *futures)
    assert writes.keys() == ["busy", "job"]
    await scheduler.close()


async def test_urgent_writes_go_first_and_upgrade_a_waiting_one():
    writes = Writes()
    writes.gate.clear()
    scheduler = WriteScheduler(writes.run, limit=100, per_s=1.0)
    scheduler.submit(1, "running")
    await asyncio.sleep(0)
    progress = [scheduler.submit(1, f"progress{n}") for n in range(3)]
    final = scheduler.submit(1, "final", urgent=True)
    upgraded = scheduler.submit(1, "progress2", urgent=True)  # became final meanwhile
    assert upgraded is progress[2]
    writes.gate.set()
    await asyncio.gather(final, *progress)
    assert writes.keys() == ["running", "final", "progress2", "progress0", "progress1"]
    await scheduler.close()


async def test_a_busy_channel_does_not_delay_another():
    writes = Writes()
    scheduler = WriteScheduler(writes.run, limit=1, per_s=30.0, margin_s=0.0)
    await scheduler.submit(1, "first")
    blocked = scheduler.submit(1, "second")  # channel 1 must now wait 30 s
    await asyncio.wait_for(scheduler.submit(2, "elsewhere"), 1.0)
    assert not blocked.done()
    await scheduler.close()
    assert blocked.cancelled()


async def test_a_crashing_write_fails_its_future_and_the_queue_goes_on():
    calls: list[str] = []

    async def run(key: str) -> tuple[None, bool]:
        calls.append(key)
        if key == "bad":
            raise RuntimeError("bug")
        return None, True

    scheduler = WriteScheduler(run, limit=100, per_s=1.0)
    bad, good = scheduler.submit(1, "bad"), scheduler.submit(1, "good")
    assert isinstance((await asyncio.gather(bad, return_exceptions=True))[0], RuntimeError)
    await good
    assert calls == ["bad", "good"]
    await scheduler.close()


async def test_progress_never_spends_the_last_write_of_a_window():
    """A final that arrives after a burst of progress goes out at once, not when the window reopens."""
    writes = Writes()
    scheduler = WriteScheduler(writes.run, limit=3, per_s=30.0, margin_s=0.0, reserve=1)
    progress = [scheduler.submit(1, f"progress{n}") for n in range(4)]
    await writes.wait_count(2)  # two of the three writes of the window go to progress
    final = scheduler.submit(1, "final", urgent=True)
    await asyncio.wait_for(final, 1.0)  # the reserved third write: no 30 s wait
    assert writes.keys() == ["progress0", "progress1", "final"]
    assert not any(f.done() for f in progress[2:])  # the rest waits for the window
    await scheduler.close()


async def test_a_final_is_written_before_the_progress_edits_waiting_in_its_lane():
    writes = Writes()
    scheduler = WriteScheduler(writes.run, limit=2, per_s=0.3, margin_s=0.0, reserve=1)
    progress = [scheduler.submit(1, f"progress{n}") for n in range(4)]
    await writes.wait_count(1)
    final = scheduler.submit(1, "final", urgent=True)
    await asyncio.gather(final, *progress)
    assert writes.keys()[:2] == ["progress0", "final"]
    await scheduler.close()
