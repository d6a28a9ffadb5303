"""The measurements: each runs one bot in a fresh world and returns what it saw.

Waiting is on conditions (``sim.wait_for``, ``dd.wait_for``), each with a bound; the only sleeps
are the measurement windows of the requests-per-tick row.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import cpu_seconds, memory_mb, pid_of
from bench.world import (
    NAIVE,
    REAL,
    JobLatency,
    LocalLag,
    LoopLag,
    PollCounter,
    final_latencies,
    world,
)

SETTLE_TIMEOUT_S = 60.0  # bound on any one wait for the bots (a wait that hits it is reported)


@dataclass
class TickResult:
    tasks: int
    requests_per_tick: float
    requests_per_s: float
    tick_period_s: float  # mean time between two polls of the same task
    window_s: float
    fetches: int  # of the requests counted, how many were /task/{id}/fetch (the rest: list-by-condition)
    requests: int
    discord_writes: int  # should be 0: nothing changed
    loop_lag: LoopLag | None = None


async def requests_per_tick(
    workdir: Path, kind: str, tasks: int, *, interval_s: float, window_ticks: int
) -> TickResult:
    """N unfinished tasks held still; after every task has been polled once (start-up is not
    measured), count the proxy's task requests over ``window_ticks`` poll intervals and divide by
    how many times each task was asked about on average (one "tick" = every task polled once)."""
    async with world(workdir, f"ticks-{kind}-{tasks}", channels=1, mode="manual") as w:
        seeded = await w.seed(tasks, [w.dd.channel_id], kind)
        ids = [s.task_id for s in seeded]
        config = w.config(poll_interval_s=interval_s)
        await w.start(kind, config, adopt=w.dir / "adopt.jsonl" if kind == NAIVE else None)
        warm = PollCounter(w.sim, ids)
        await w.sim.wait_for(lambda: warm.update().rounds >= 1, SETTLE_TIMEOUT_S)
        begin, started = len(w.sim.requests), time.monotonic()
        await asyncio.sleep(window_ticks * interval_s)  # the measurement window
        end, window = len(w.sim.requests), time.monotonic() - started
        counted = PollCounter(w.sim, ids, start=begin).update(stop=end)
        polls = counted.mean_polls
        whole_run = PollCounter(w.sim, ids).update(stop=end)  # start-up included: enough polls for a period
        return TickResult(
            tasks=tasks,
            requests_per_tick=counted.requests / polls if polls else float("nan"),
            requests_per_s=counted.requests / window,
            tick_period_s=whole_run.mean_period_s,
            window_s=window,
            fetches=counted.fetches,
            requests=counted.requests,
            discord_writes=w.dd.channel_writes(),
            loop_lag=await w.loop_lag(),
        )


@dataclass
class LatencyResult:
    jobs: int
    latencies: list[JobLatency]  # jobs whose final image is on Discord
    not_shown: list[float]  # jobs whose is not (yet): seconds since the proxy finished them, at the end
    waited_s: float
    writes: int = 0  # bot-token message writes in the channel(s): what Discord's 5 per 5 s counts
    webhook_writes: int = 0  # writes through interaction webhooks (own budget)
    rate_limited: int = 0
    notes: list[str] = field(default_factory=list)
    loop_lag: LoopLag | None = None


async def final_latency(
    workdir: Path,
    kind: str,
    *,
    name: str,
    jobs: int,
    one_channel: bool,
    push: bool,
    poll_interval_s: float,
    step_s: float,
    jitter: float,
    grace_s: float,
) -> LatencyResult:
    """``jobs`` concurrent /imagine (all sent at once), each in its own channel or all in one; the
    simulator runs them on its clock (``step_s`` per step, jittered per task, seeded). Measures
    proxy final state -> first Discord version with the final image attached, for every job, and
    the channel's writes and 429s. Waits until every final image is shown, at most ``grace_s``
    after the last task finished at the proxy."""
    channels = 1 if one_channel else jobs
    async with world(
        workdir, name, channels=channels, mode="time", step_s=step_s, jitter=jitter, max_running=jobs, max_queue=jobs
    ) as w:
        config = w.config(poll_interval_s=poll_interval_s, push=push)
        await w.start(kind, config)
        for n in range(jobs):
            channel = w.dd.channel_id if one_channel else w.dd.channel_ids[n]
            await w.dd.slash("imagine", {"prompt": f"{name} job {n}"}, channel=channel)
        sent = time.monotonic()
        notes = []
        longest = step_s * (1 + jitter) * len(w.sim.timeline)
        try:
            await w.sim.wait_for(
                lambda: len(w.sim.tasks) == jobs and all(t.is_finished for t in w.sim.tasks.values()),
                longest + SETTLE_TIMEOUT_S,
            )
        except TimeoutError:
            notes.append(f"{sum(t.is_finished for t in w.sim.tasks.values())} of {jobs} tasks finished at the proxy")
        try:
            await w.dd.wait_for(lambda: w.finals_shown() >= jobs, timeout=grace_s, what=f"{jobs} final images")
        except TimeoutError:
            notes.append(f"stopped waiting {grace_s:.0f} s after the last task finished at the proxy")
        waited, ended = time.monotonic() - sent, time.time()
        latencies = final_latencies(w)
        shown = {item.task_id for item in latencies}
        # Not shown: at least as late as the end of the wait (never submitted or finished: as late as that).
        missing = [ended - (t.finished_at or ended) for t in w.sim.tasks.values() if t.id not in shown]
        missing += [0.0] * (jobs - len(w.sim.tasks))
        channel = w.dd.channel_id if one_channel else None
        return LatencyResult(
            jobs=jobs,
            latencies=latencies,
            not_shown=missing,
            waited_s=waited,
            writes=w.dd.channel_writes(channel),
            webhook_writes=w.webhook_writes(),
            rate_limited=w.dd.rate_limit_hits(channel),
            notes=notes,
            loop_lag=await w.loop_lag(),
        )


@dataclass
class CpuResult:
    tasks: int
    updates: int
    cpu_s: float
    phase_s: float
    discord_writes: int
    loop_lag: LoopLag | None = None

    @property
    def per_thousand(self) -> float:
        return self.cpu_s * 1000 / self.updates


async def cpu_per_updates(workdir: Path, kind: str, *, tasks: int, interval_s: float) -> CpuResult:
    """``tasks`` unfinished tasks, one per channel (Discord's budget paces nothing), each moved
    through 10% -> 40% -> 80% -> SUCCESS: 4 updates each. A step is made for every task at once,
    and the next only when the bot has polled every task since (so it observes each update).
    CPU = utime + stime of the bot process from the first step to the last final image shown."""
    async with world(workdir, f"cpu-{kind}", channels=tasks, mode="manual") as w:
        seeded = await w.seed(tasks, w.dd.channel_ids, kind)
        ids = [s.task_id for s in seeded]
        adopt = w.dir / "adopt.jsonl" if kind == NAIVE else None
        await w.start(kind, w.config(poll_interval_s=interval_s), adopt=adopt)
        pid = pid_of(w.bots[-1])
        warm = PollCounter(w.sim, ids)
        await w.sim.wait_for(lambda: warm.update().rounds >= 1, SETTLE_TIMEOUT_S)
        writes_before = w.dd.channel_writes()
        cpu_before, started = cpu_seconds(pid), time.monotonic()
        steps = 0
        for _ in range(len(w.sim.timeline)):  # bounded: the timeline's steps, then SUCCESS
            if w.sim.tasks[ids[0]].is_finished:
                break
            mark = len(w.sim.requests)
            for task_id in ids:
                w.sim.advance(task_id)
            steps += 1
            seen = PollCounter(w.sim, ids, start=mark)
            await w.sim.wait_for(lambda seen=seen: seen.update().rounds >= 1, SETTLE_TIMEOUT_S)
        await w.dd.wait_for(lambda: w.finals_shown() >= tasks, timeout=SETTLE_TIMEOUT_S, what="every final image")
        cpu = cpu_seconds(pid) - cpu_before
        return CpuResult(
            tasks=tasks,
            updates=tasks * steps,
            cpu_s=cpu,
            phase_s=time.monotonic() - started,
            discord_writes=w.dd.channel_writes() - writes_before,
            loop_lag=await w.loop_lag(),
        )


@dataclass
class MemoryResult:
    tasks: int
    rss_mb: float
    peak_mb: float
    resume_s: float | None  # process start -> last list-by-condition request covering every task
    first_request_s: float | None  # process start -> first task request
    logged_in_s: float  # process start -> logged in to the double (gateway IDENTIFY)
    rewritten_at_resume: int | None = None  # seeded jobs the first tick wrote to SQLite (should be 0)
    loop_lag: LoopLag | None = None


async def resume_and_memory(
    workdir: Path, kind: str, *, tasks: int, channels: int, poll_interval_s: float
) -> MemoryResult:
    """``tasks`` unfinished tasks: this bot resumes them from SQLite, the naive one adopts them
    (one polling coroutine each). Resume time: from spawning the process to the arrival of the
    request that completes the first round covering every task. RSS: read once every task has been
    asked about twice (so the first round's answers have all been processed)."""
    async with world(workdir, f"memory-{kind}", channels=channels, mode="manual") as w:
        seeded = await w.seed(tasks, w.dd.channel_ids, kind)
        ids = [s.task_id for s in seeded]
        config = w.config(poll_interval_s=poll_interval_s)
        counter = PollCounter(w.sim, ids)
        spawned = time.time()
        await w.start(kind, config, adopt=w.dir / "adopt.jsonl" if kind == NAIVE else None)
        logged_in = time.time() - spawned
        pid = pid_of(w.bots[-1])
        await w.sim.wait_for(lambda: counter.update().rounds >= 1, SETTLE_TIMEOUT_S)
        await w.sim.wait_for(lambda: counter.update().rounds >= 2, SETTLE_TIMEOUT_S)
        rss, peak = memory_mb(pid)
        result = MemoryResult(
            tasks=tasks,
            rss_mb=rss,
            peak_mb=peak,
            resume_s=counter.round_at[1] - spawned,
            first_request_s=(counter.first_at or spawned) - spawned,
            logged_in_s=logged_in,
        )
        if kind == REAL:
            with contextlib.closing(sqlite3.connect(f"file:{w.db_path}?mode=ro", uri=True)) as db:
                seeded_at = db.execute("SELECT MIN(created_at) FROM jobs").fetchone()[0]
                result.rewritten_at_resume = db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE updated_at > ?", (seeded_at,)
                ).fetchone()[0]
        if kind == NAIVE:
            result.resume_s = None
        result.loop_lag = await w.loop_lag()
        return result


ACK_BOUND_S = 3.0  # Discord fails an interaction not answered within 3 s
ACK_WAIT_S = 15.0  # after the last interaction: how long unanswered ones are waited for ("never" after that)


@dataclass
class AckResult:
    tracked: int
    channels: int
    burst_s: float  # how long sending the burst took
    command_acks: list[float]  # seconds from dispatch to the first callback, per /imagine answered
    command_never: int  # /imagine never answered (within ACK_WAIT_S after the burst)
    press_acks: list[float]
    press_never: int
    presses_wanted: int
    advances: int  # seeded tasks moved during the burst window
    pushes: int  # push deliveries the simulator made meanwhile (this bot only)
    bench_lag_s: float  # the benchmark process's own worst loop lag during the burst
    loop_lag: LoopLag | None = None
    notes: list[str] = field(default_factory=list)

    @staticmethod
    def late(acks: list[float], never: int, bound_s: float = ACK_BOUND_S) -> int:
        return sum(1 for a in acks if a > bound_s) + never


async def interaction_burst(
    workdir: Path,
    kind: str,
    *,
    tracked: int,
    channels: int,
    commands: int,
    burst_s: float,
    presses: int,
    poll_interval_s: float,
    churn_per_s: float,
) -> AckResult:
    """``tracked`` unfinished tasks (resumed from SQLite, or adopted by the naive bot) spread over
    ``channels`` channels, push on for this bot; while the simulator keeps moving them
    (``churn_per_s`` steps a second, each a push to this bot), ``commands`` /imagine and
    ``presses`` button presses arrive evenly over ``burst_s`` seconds, round-robin over the
    channels. The presses are U1 on finished grids (tasks finished and shown before the burst;
    the naive bot has no buttons, so none for it). Ack = the double's dispatch of
    INTERACTION_CREATE -> arrival of the bot's first callback."""
    sim_size = tracked + commands + presses + 100
    async with world(
        workdir, f"burst-{kind}", channels=channels, mode="manual", max_running=sim_size, max_queue=sim_size
    ) as w:
        seeded = await w.seed(tracked, w.dd.channel_ids, kind)
        ids = [s.task_id for s in seeded]
        config = w.config(poll_interval_s=poll_interval_s, push=kind == REAL)
        await w.start(kind, config, adopt=w.dir / "adopt.jsonl" if kind == NAIVE else None)
        w.sim.notify_hook = w.notify_hook  # the seeded tasks push to this bot too (None: no push)
        warm = PollCounter(w.sim, ids)
        await w.sim.wait_for(lambda: warm.update().rounds >= 1, SETTLE_TIMEOUT_S)
        notes: list[str] = []

        # Finished grids to press U1 on: tasks finished at the proxy and shown with their buttons.
        grids: list[tuple[int, str]] = []
        if kind == REAL and presses:
            finished = seeded[:presses]
            for item in finished:
                w.sim.succeed(item.task_id)

            def u1_buttons() -> list[tuple[int, str]]:
                found = []
                for item in finished:
                    message = w.dd.messages.get(item.message_id)
                    button = (
                        next((c for c in message.current.custom_ids if c.startswith("mj:u:1:")), None)
                        if message and message.current.attachments
                        else None
                    )
                    if button:
                        found.append((item.message_id, button))
                return found

            await w.dd.wait_for(
                lambda: len(u1_buttons()) == len(finished),
                timeout=SETTLE_TIMEOUT_S,
                what="the finished grids with their buttons",
            )
            grids = u1_buttons()
        moving = ids[len(grids) :] if grids else ids

        # Keep the tracked tasks moving: one step each, round-robin, paced (load, not a wait).
        advances = 0
        deliveries_before = len(w.sim.deliveries)

        async def churn() -> None:
            nonlocal advances
            batch_s = 0.05
            per_batch = max(1, round(churn_per_s * batch_s))
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while True:
                for _ in range(per_batch):
                    task = w.sim.tasks[moving[advances % len(moving)]]
                    # Up to 80%: the seeded tasks stay unfinished (finals are the latency rows' business).
                    if task.step + 2 < len(task.timeline):
                        w.sim.advance(task.id)
                    advances += 1
                next_at += batch_s
                await asyncio.sleep(max(0.0, next_at - loop.time()))

        mark = await w.scrape_lag()
        churner = asyncio.create_task(churn(), name="bench-churn")
        try:
            if kind == REAL:  # pushes arriving before the burst starts
                await w.sim.wait_for(lambda: len(w.sim.deliveries) > deliveries_before, SETTLE_TIMEOUT_S)
            slots: list[tuple[str, int]] = [("imagine", n) for n in range(commands)]
            if grids:  # presses spread evenly among the commands
                every = (commands + len(grids)) / len(grids)
                for n in range(len(grids)):
                    slots.insert(min(len(slots), round(n * every)), ("press", n))
            sent_commands, sent_presses = [], []
            async with LocalLag() as bench_lag:
                loop = asyncio.get_running_loop()
                started = loop.time()
                for i, (what, n) in enumerate(slots):
                    await asyncio.sleep(max(0.0, started + i * burst_s / len(slots) - loop.time()))  # pacing
                    if what == "imagine":
                        channel = w.dd.channel_ids[n % channels]
                        sent_commands.append(await w.dd.slash("imagine", {"prompt": f"burst job {n}"}, channel=channel))
                    else:
                        message_id, button = grids[n]
                        sent_presses.append(await w.dd.click(message_id, button))
                sent_s = loop.time() - started
                everything = sent_commands + sent_presses
                try:
                    await w.dd.wait_for(
                        lambda: all(i.acked_at is not None for i in everything),
                        timeout=ACK_WAIT_S,
                        what="every interaction answered",
                    )
                except TimeoutError:
                    notes.append(f"stopped waiting {ACK_WAIT_S:g} s after the burst")
        finally:
            churner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await churner
        lag = await w.loop_lag(mark)
        pushes = len(w.sim.deliveries) - deliveries_before
        return AckResult(
            tracked=tracked,
            channels=channels,
            burst_s=sent_s,
            command_acks=[i.ack_s for i in sent_commands if i.ack_s is not None],
            command_never=sum(1 for i in sent_commands if i.ack_s is None),
            press_acks=[i.ack_s for i in sent_presses if i.ack_s is not None],
            press_never=sum(1 for i in sent_presses if i.ack_s is None),
            presses_wanted=presses,
            advances=advances,
            pushes=pushes,
            bench_lag_s=bench_lag.worst_s,
            loop_lag=lag,
            notes=notes,
        )


@dataclass
class LoadResult:
    jobs: int
    submitted: int  # tasks the proxy received
    duplicates: int  # jobs with more than one public message
    given_up: int  # messages the bot stopped updating ("no more updates to its message")
    stale: int  # messages not showing their task's final image once everything settled
    waited_s: float
    notes: list[str] = field(default_factory=list)


async def load_correctness(
    workdir: Path,
    kind: str,
    *,
    jobs: int,
    channels: int,
    send_s: float,
    step_s: float,
    poll_interval_s: float,
    settle_s: float,
) -> LoadResult:
    """Correct under load, not only fast: ``jobs`` /imagine sent evenly over ``send_s`` seconds,
    round-robin over ``channels`` channels and two members, push on for this bot and every push
    delivered twice, tasks moving on the simulator's clock. Once every task finished (or
    ``settle_s`` after the last one did), count jobs with more than one public message, messages
    given up, and messages not showing their final image."""
    async with world(
        workdir,
        f"load-{kind}",
        channels=channels,
        mode="time",
        step_s=step_s,
        jitter=0.5,
        max_running=jobs,
        max_queue=jobs,
    ) as w:
        config = w.config(poll_interval_s=poll_interval_s, push=kind == REAL)
        bot = await w.start(kind, config)
        w.sim.duplicate_next_deliveries(jobs * 5)
        started = time.monotonic()
        for n in range(jobs):
            due = started + send_s * n / jobs
            if due > time.monotonic():
                await asyncio.sleep(due - time.monotonic())  # the sending pace, not a synchronisation
            await w.dd.slash(
                "imagine", {"prompt": f"load job {n}"}, user=w.dd.members[n % 2], channel=w.dd.channel_ids[n % channels]
            )
        notes: list[str] = []
        try:
            await w.sim.wait_for(
                lambda: len(w.sim.tasks) >= jobs and all(t.is_finished for t in w.sim.tasks.values()),
                SETTLE_TIMEOUT_S + step_s * 8,
            )
        except TimeoutError:
            notes.append(
                f"{sum(t.is_finished for t in w.sim.tasks.values())} of {len(w.sim.tasks)} tasks finished at the proxy"
            )
        try:
            await w.dd.wait_for(
                lambda: w.finals_shown() >= len(w.sim.tasks), timeout=settle_s, what="every final image"
            )
        except TimeoutError:
            notes.append(f"stopped waiting {settle_s:.0f} s after the tasks finished")
        counts: dict[str, int] = {}
        latest: dict[str, bool] = {}
        for message in w.bot_messages():
            prompt = message.first.content.split("**")[1]
            counts[prompt] = counts.get(prompt, 0) + 1
            latest[prompt] = latest.get(prompt, False) or bool(message.current.attachments)
        return LoadResult(
            jobs=jobs,
            submitted=len(w.sim.tasks),
            duplicates=sum(1 for c in counts.values() if c > 1),
            given_up=bot.log_text().count("no more updates to its message"),
            stale=sum(1 for shown in latest.values() if not shown) + (len(w.sim.tasks) - len(counts)),
            waited_s=time.monotonic() - started,
            notes=notes,
        )
