"""``python -m bench.run [--quick]``: the benchmark, this bot against the naive way, in one table.

Every scenario gets fresh servers (the proxy simulator and the Discord double, in this process on
127.0.0.1) and a fresh database, and runs the real bot (``python -m bot run``) or the naive one
(``python -m bench.naive_bot``) as a child process. The table is printed and, for a full run,
written as Markdown to ``bench/results.md``. Every child process is stopped at the end, also on
errors and Ctrl-C. The default run takes about 4.5 minutes on a 2-core machine; ``--quick`` is a
smoke run (small sizes, under a minute) whose figures are not comparable with the goals.

After the table, a full run measures issue 14's setups side by side (``bench/cluster.py``): one
process on SQLite, one on PostgreSQL, two sharing the shards over PostgreSQL.

Rows of issue 12: final latency with progress in one channel and push; interaction acks (``/imagine``
and button presses) under a burst while thousands of tasks are tracked and pushes arrive; CPU per
1,000 updates against the naive bot; and each scenario's event-loop lag, read from the bots'
``/metrics`` (``mjbot_event_loop_lag_seconds``; the config sets ``[http] listen``).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.report import (
    Row,
    Table,
    count,
    current_commit,
    machine_lines,
    nearest_rank,
    seconds,
    spread,
    verdict,
)
from bench.world import LABELS, NAIVE, REAL

RESULTS = Path(__file__).resolve().parent / "results.md"


@dataclass(frozen=True)
class Profile:
    name: str
    tick_sizes: tuple[int, ...]
    tick_interval_s: float  # a short poll interval for the requests-per-tick rows
    tick_window: int  # poll intervals per measurement window
    latency_jobs: int  # one per channel
    latency_step_s: float
    poll_interval_s: float  # the default: what "within one poll interval" means
    one_channel_jobs: int
    one_channel_step_s: float
    one_channel_grace_s: float  # how long after the last proxy final the images may take to show
    cpu_tasks: int  # x 4 updates each
    cpu_interval_s: float
    memory_tasks: int
    memory_channels: int
    # Final latency with progress in one channel, push (issue 12, item 1)
    push_one_jobs: int
    push_one_step_s: float
    push_one_naive_poll_s: float
    push_one_naive_grace_s: float  # the naive bot's finals wait behind its posts: bounded
    # Interaction acks under a burst (issue 12, item 2)
    burst_tracked: int
    burst_channels: int
    burst_commands: int
    burst_s: float
    burst_presses: int
    burst_churn_per_s: float
    # Correct under load (issue 12, item 5): /imagine sent over a few seconds, pushes twice
    load_jobs: int = 2000
    load_send_s: float = 15.0
    load_channels: int = 20
    load_settle_s: float = 60.0
    jitter: float = 0.5


FULL = Profile(
    "full",
    tick_sizes=(10, 100, 1000),
    tick_interval_s=0.5,
    tick_window=6,
    latency_jobs=40,
    latency_step_s=1.0,
    poll_interval_s=3.0,
    one_channel_jobs=50,
    one_channel_step_s=6.0,
    one_channel_grace_s=60.0,
    cpu_tasks=250,
    cpu_interval_s=0.5,
    memory_tasks=10_000,
    memory_channels=100,
    push_one_jobs=50,
    push_one_step_s=1.0,
    push_one_naive_poll_s=1.0,
    push_one_naive_grace_s=20.0,
    burst_tracked=10_000,
    burst_channels=20,
    burst_commands=200,
    burst_s=2.0,
    burst_presses=50,
    burst_churn_per_s=200.0,
)
QUICK = Profile(
    "quick",
    tick_sizes=(10, 100),
    tick_interval_s=0.5,
    tick_window=2,
    latency_jobs=6,
    latency_step_s=0.3,
    poll_interval_s=1.0,
    one_channel_jobs=4,
    one_channel_step_s=0.3,
    one_channel_grace_s=3.0,
    cpu_tasks=25,
    cpu_interval_s=0.5,
    memory_tasks=500,
    memory_channels=10,
    push_one_jobs=4,
    push_one_step_s=0.3,
    push_one_naive_poll_s=1.0,
    push_one_naive_grace_s=1.0,
    burst_tracked=200,
    burst_channels=4,
    burst_commands=12,
    burst_s=0.5,
    burst_presses=3,
    burst_churn_per_s=40.0,
    load_jobs=16,
    load_send_s=0.5,
    load_channels=4,
    load_settle_s=3.0,
)

RSS_GOAL_MB = 150.0
RESUME_GOAL_S = 2.0
PUSH_P50_GOAL_S = 0.100
PUSH_MAX_GOAL_S = 0.500
ONE_CHANNEL_GOAL_S = 5.0
ACK_P99_GOAL_S = 0.300


class Runner:
    """Runs the steps one after another; a step that fails is reported and the others go on."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.results: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    async def step(self, key: str, what: str, run: Callable[[], Awaitable[Any]]) -> None:
        self.done += 1
        print(f"[{self.done:2}/{self.total}] {what} ...", end="", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            self.results[key] = await run()
        except Exception as exc:  # noqa: BLE001 - reported in the table, the run goes on
            self.errors[key] = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
            print(f" failed ({time.monotonic() - started:.1f} s)", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            return
        print(f" {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)

    def get(self, key: str) -> Any:
        return self.results.get(key)

    def cell(self, key: str, render: Callable[[Any], str]) -> str:
        if key in self.errors:
            return "error"
        value = self.results.get(key)
        return "—" if value is None else render(value)


async def measure(profile: Profile, workdir: Path) -> Runner:
    p = profile
    kinds = (REAL, NAIVE)
    steps: list[tuple[str, str, Callable[[], Awaitable[Any]]]] = []
    for n in p.tick_sizes:
        for kind in kinds:
            steps.append(
                (
                    f"ticks:{kind}:{n}",
                    f"requests per tick, {LABELS[kind]}, {n:,} tasks",
                    lambda kind=kind, n=n: scenarios.requests_per_tick(
                        workdir, kind, n, interval_s=p.tick_interval_s, window_ticks=p.tick_window
                    ),
                )
            )
    for kind, push in ((REAL, True), (REAL, False), (NAIVE, False)):
        mode = "push" if push else "polling"
        steps.append(
            (
                f"latency:{kind}:{mode}",
                f"final-state latency, {LABELS[kind]}, {mode}, {p.latency_jobs} jobs in {p.latency_jobs} channels",
                lambda kind=kind, push=push, mode=mode: scenarios.final_latency(
                    workdir,
                    kind,
                    name=f"latency-{kind}-{mode}",
                    jobs=p.latency_jobs,
                    one_channel=False,
                    push=push,
                    poll_interval_s=p.poll_interval_s,
                    step_s=p.latency_step_s,
                    jitter=p.jitter,
                    grace_s=30.0,
                ),
            )
        )
    for kind in kinds:
        steps.append(
            (
                f"one:{kind}",
                f"{p.one_channel_jobs} jobs in one channel, {LABELS[kind]}",
                lambda kind=kind: scenarios.final_latency(
                    workdir,
                    kind,
                    name=f"one-channel-{kind}",
                    jobs=p.one_channel_jobs,
                    one_channel=True,
                    push=False,
                    poll_interval_s=p.poll_interval_s,
                    step_s=p.one_channel_step_s,
                    jitter=p.jitter,
                    grace_s=p.one_channel_grace_s,
                ),
            )
        )
    for kind in kinds:
        push = kind == REAL
        steps.append(
            (
                f"pushone:{kind}",
                f"{p.push_one_jobs} jobs in one channel, progress every "
                f"{p.push_one_step_s:g} s, {LABELS[kind]}, "
                + ("push" if push else f"polling {p.push_one_naive_poll_s:g} s"),
                lambda kind=kind, push=push: scenarios.final_latency(
                    workdir,
                    kind,
                    name=f"push-one-channel-{kind}",
                    jobs=p.push_one_jobs,
                    one_channel=True,
                    push=push,
                    poll_interval_s=p.poll_interval_s if push else p.push_one_naive_poll_s,
                    step_s=p.push_one_step_s,
                    jitter=p.jitter,
                    grace_s=30.0 if push else p.push_one_naive_grace_s,
                ),
            )
        )
    for kind in kinds:
        steps.append(
            (
                f"burst:{kind}",
                f"interaction burst, {LABELS[kind]}: {p.burst_commands} /imagine"
                + (f" + {p.burst_presses} presses" if kind == REAL else "")
                + f" in {p.burst_s:g} s, {p.burst_tracked:,} tracked",
                lambda kind=kind: scenarios.interaction_burst(
                    workdir,
                    kind,
                    tracked=p.burst_tracked,
                    channels=p.burst_channels,
                    commands=p.burst_commands,
                    burst_s=p.burst_s,
                    presses=p.burst_presses,
                    poll_interval_s=p.poll_interval_s,
                    churn_per_s=p.burst_churn_per_s,
                ),
            )
        )
    for kind in kinds:
        steps.append(
            (
                f"load:{kind}",
                f"correct under load, {LABELS[kind]}: {p.load_jobs:,} /imagine in "
                f"{p.load_send_s:g} s over {p.load_channels} channels",
                lambda kind=kind: scenarios.load_correctness(
                    workdir,
                    kind,
                    jobs=p.load_jobs,
                    channels=p.load_channels,
                    send_s=p.load_send_s,
                    step_s=1.0,
                    poll_interval_s=1.0,
                    settle_s=p.load_settle_s if kind == REAL else p.load_settle_s / 2,
                ),
            )
        )
    for kind in kinds:
        steps.append(
            (
                f"cpu:{kind}",
                f"CPU per task update, {LABELS[kind]}, {p.cpu_tasks * 4:,} updates",
                lambda kind=kind: scenarios.cpu_per_updates(
                    workdir, kind, tasks=p.cpu_tasks, interval_s=p.cpu_interval_s
                ),
            )
        )
    for kind in kinds:
        steps.append(
            (
                f"memory:{kind}",
                f"resume and RSS, {LABELS[kind]}, {p.memory_tasks:,} tasks",
                lambda kind=kind: scenarios.resume_and_memory(
                    workdir, kind, tasks=p.memory_tasks, channels=p.memory_channels, poll_interval_s=p.poll_interval_s
                ),
            )
        )
    runner = Runner(len(steps))
    for key, what, run in steps:
        await runner.step(key, what, run)
    return runner


def build_table(profile: Profile, r: Runner, total_s: float, command: str, commit: str = "") -> Table:
    p = profile
    title = "mjbot benchmark: this bot vs the naive way"
    if p is QUICK:
        title += " (QUICK smoke run: sizes below the goals', figures not comparable with them)"
    table = Table(title, machine=machine_lines(total_s, command, commit))
    rows, notes = table.rows, table.notes
    star = "*" if p is QUICK else ""

    # 1. proxy requests per tick
    for n in p.tick_sizes:
        real, naive = r.get(f"ticks:{REAL}:{n}"), r.get(f"ticks:{NAIVE}:{n}")
        rows.append(
            Row(
                f"Proxy requests per tick, {n:,} unfinished tasks",
                r.cell(f"ticks:{REAL}:{n}", lambda v: count(v.requests_per_tick)),
                r.cell(f"ticks:{NAIVE}:{n}", lambda v: count(v.requests_per_tick)),
                f"1 (naive way: {n:,})" if n <= 1000 else "—",
                verdict(real.requests_per_tick <= 1.0 + 1e-9) + star if real else "—",
            )
        )
    biggest = p.tick_sizes[-1]
    real, naive = r.get(f"ticks:{REAL}:{biggest}"), r.get(f"ticks:{NAIVE}:{biggest}")
    if real and naive:
        notes.append(
            f"Requests per tick: tasks held unfinished, poll interval {p.tick_interval_s} s for both; counted over "
            f"{p.tick_window} intervals after every task had been polled once, divided by how often each task was "
            f"asked about (a tick = every task polled once). At {biggest:,} tasks: this bot "
            f"{count(real.requests_per_s)} req/s, {_kinds(real)} (a task polled every {real.tick_period_s:.2f} s), "
            f"naive {count(naive.requests_per_s)} req/s, {_kinds(naive)} (every {naive.tick_period_s:.2f} s). Discord "
            f"writes meanwhile: {real.discord_writes} / {naive.discord_writes}."
        )

    # 2. final-state latency
    push, poll, naive_poll = (
        r.get(f"latency:{k}:{m}") for k, m in ((REAL, "push"), (REAL, "polling"), (NAIVE, "polling"))
    )

    def lat(v: scenarios.LatencyResult) -> str:
        return spread([j.total_s for j in v.latencies], censored=v.not_shown)

    rows.append(
        Row(
            "Final state -> final image on Discord, push, p50 / p95 / max",
            r.cell(f"latency:{REAL}:push", lat),
            "— (no push)",
            "p50 < 100 ms",
            verdict(not push.not_shown and _median([j.total_s for j in push.latencies]) < PUSH_P50_GOAL_S) + star
            if push
            else "—",
        )
    )
    rows.append(
        Row(
            f"Final state -> final image on Discord, polling every {p.poll_interval_s:g} s",
            r.cell(f"latency:{REAL}:polling", lat),
            r.cell(f"latency:{NAIVE}:polling", lat),
            f"every job ≤ {p.poll_interval_s:g} s (one poll interval)",
            verdict(not poll.not_shown and max(j.total_s for j in poll.latencies) <= p.poll_interval_s) + star
            if poll and poll.latencies
            else "—",
        )
    )
    if push and poll:
        notes.append(
            f"Latencies are p50 / p95 / max (nearest rank). Final-state latency: {p.latency_jobs} /imagine at once, "
            f"one per channel (Discord's budget paces nothing); the simulator runs each task on "
            f"its own clock ({p.latency_step_s:g} s per step ±{p.jitter:.0%}, seeded); latency = the double's first "
            f"message version with the final image attached − the simulator's time of the final state. Of it, the "
            f"wait until the bot could know (first poll answer or push after the final state): push "
            f"{_detect(push)}; polling {_detect(poll)}" + (f"; naive {_detect(naive_poll)}" if naive_poll else "") + "."
        )

    # 3. one channel
    jobs = p.one_channel_jobs
    one_real, one_naive = r.get(f"one:{REAL}"), r.get(f"one:{NAIVE}")

    def per_job(v: scenarios.LatencyResult) -> str:
        text = ("≥ " if v.not_shown else "") + count(v.writes / v.jobs)
        return text + (f" (+ {count(v.webhook_writes / v.jobs)} via webhooks)" if v.webhook_writes else "")

    def hits(v: scenarios.LatencyResult) -> str:
        return ("≥ " if v.not_shown else "") + count(v.rate_limited)

    rows.append(
        Row(
            f"{jobs} jobs in one channel: channel writes per job (5 per 5 s allowed)",
            r.cell(f"one:{REAL}", per_job),
            r.cell(f"one:{NAIVE}", per_job),
        )
    )
    rows.append(
        Row(
            f"{jobs} jobs in one channel: 429s received",
            r.cell(f"one:{REAL}", hits),
            r.cell(f"one:{NAIVE}", hits),
            "0",
            verdict(one_real.rate_limited == 0) + star if one_real else "—",
        )
    )
    rows.append(
        Row(
            f"{jobs} jobs in one channel: final state -> final image",
            r.cell(f"one:{REAL}", lat),
            r.cell(f"one:{NAIVE}", lat),
            f"every job ≤ {ONE_CHANNEL_GOAL_S:g} s",
            verdict(not one_real.not_shown and max(j.total_s for j in one_real.latencies) <= ONE_CHANNEL_GOAL_S) + star
            if one_real and one_real.latencies
            else "—",
        )
    )
    if one_real or one_naive:
        default = " (the default)" if p.poll_interval_s == 3.0 else ""
        text = (
            f"One channel: {jobs} /imagine sent at once in one channel, polling every {p.poll_interval_s:g} s"
            f"{default} for both; tasks take {len(scenarios_timeline())} steps of {p.one_channel_step_s:g} s "
            f"±{p.jitter:.0%} (seeded), so they finish {_finish_window(p)} after submission. Discord allows 5 "
            f"writes per 5 s in a channel"
            + (
                f": posting the {jobs} job messages alone takes "
                f"{(math.ceil(jobs / 5) - 1) * 5} s or more of the channel's budget"
                if jobs > 5
                else ""
            )
            + f". Waited until every final image was shown, at most "
            f'{p.one_channel_grace_s:g} s after the last task finished at the proxy ("≥": some were not shown '
            f"by then; their time so far is counted as their latency). The double applies the 5 per 5 s to "
            f"bot-token message writes per channel and no limit to interaction webhooks."
        )
        for label, v in ((LABELS[REAL], one_real), (LABELS[NAIVE], one_naive)):
            if v is None:
                continue
            text += f" {label.capitalize()}: {_one_channel_detail(v)}."
            if v is one_naive:
                text += " (The naive bot starts polling a job only once its message is posted.)"
            text += "".join(f" ({note})" for note in v.notes)
        notes.append(text)

    # 3b. final latency with progress in one channel, push (issue 12, item 1)
    jobs = p.push_one_jobs
    po_real, po_naive = r.get(f"pushone:{REAL}"), r.get(f"pushone:{NAIVE}")
    rows.append(
        Row(
            f"{jobs} jobs in one channel, progress every {p.push_one_step_s:g} s: final state -> final "
            f"image, p50 / p95 / max (this bot push, naive polling {p.push_one_naive_poll_s:g} s)",
            r.cell(f"pushone:{REAL}", lat),
            r.cell(f"pushone:{NAIVE}", lat),
            f"p50 < {PUSH_P50_GOAL_S * 1000:.0f} ms, max < {PUSH_MAX_GOAL_S * 1000:.0f} ms",
            verdict(
                not po_real.not_shown
                and _median([j.total_s for j in po_real.latencies]) < PUSH_P50_GOAL_S
                and max(j.total_s for j in po_real.latencies) < PUSH_MAX_GOAL_S
            )
            + star
            if po_real and po_real.latencies
            else "—",
        )
    )
    rows.append(
        Row(
            f"{jobs} jobs in one channel, progress every {p.push_one_step_s:g} s: 429s received",
            r.cell(f"pushone:{REAL}", hits),
            r.cell(f"pushone:{NAIVE}", hits),
            "0",
            verdict(po_real.rate_limited == 0) + star if po_real else "—",
        )
    )
    if po_real or po_naive:
        text = (
            f"One channel with push: {jobs} /imagine at once in one channel; tasks take "
            f"{len(scenarios_timeline())} steps of {p.push_one_step_s:g} s ±{p.jitter:.0%} (seeded), each a "
            f"progress change; this bot with push on (and its default {p.poll_interval_s:g} s poll behind it), "
            f"the naive bot polling every {p.push_one_naive_poll_s:g} s (it has no push); waited until every "
            f"final image was shown, at most 30 s (this bot) / {p.push_one_naive_grace_s:g} s (naive) after the "
            f"last task finished at the proxy."
        )
        for label, v in ((LABELS[REAL], po_real), (LABELS[NAIVE], po_naive)):
            if v is not None:
                text += f" {label.capitalize()}: {_one_channel_detail(v)}."
                text += "".join(f" ({note})" for note in v.notes)
        notes.append(text)

    # 3c. interaction acks under a burst (issue 12, item 2)
    b_real, b_naive = r.get(f"burst:{REAL}"), r.get(f"burst:{NAIVE}")

    def acks(values: str, never: str) -> Callable[[scenarios.AckResult], str]:
        def render(v: scenarios.AckResult) -> str:
            answered, missing = getattr(v, values), getattr(v, never)
            return _p50_p99_max(answered) + (f" ({missing} never)" if missing else "")

        return render

    def late(values: str, never: str) -> Callable[[scenarios.AckResult], str]:
        def render(v: scenarios.AckResult) -> str:
            answered, missing = getattr(v, values), getattr(v, never)
            return f"{scenarios.AckResult.late(answered, 0)} (never: {missing})"

        return render

    def ack_met(v: scenarios.AckResult | None, values: str, never: str) -> str:
        if v is None or not getattr(v, values):
            return "—"
        answered, missing = getattr(v, values), getattr(v, never)
        return (
            verdict(
                missing == 0
                and nearest_rank(answered, 0.99) < ACK_P99_GOAL_S
                and scenarios.AckResult.late(answered, 0) == 0
            )
            + star
        )

    burst = (
        f"{p.burst_commands} /imagine + {p.burst_presses} presses in {p.burst_s:g} s over "
        f"{p.burst_channels} channels, {p.burst_tracked:,} tracked"
    )
    rows.append(
        Row(
            f"Ack of /imagine, p50 / p99 / max ({burst})",
            r.cell(f"burst:{REAL}", acks("command_acks", "command_never")),
            r.cell(f"burst:{NAIVE}", acks("command_acks", "command_never")),
            f"every one acked, p99 < {ACK_P99_GOAL_S * 1000:.0f} ms",
            ack_met(b_real, "command_acks", "command_never"),
        )
    )
    rows.append(
        Row(
            f"/imagine not acked within {scenarios.ACK_BOUND_S:g} s",
            r.cell(f"burst:{REAL}", late("command_acks", "command_never")),
            r.cell(f"burst:{NAIVE}", late("command_acks", "command_never")),
            "0",
            verdict(scenarios.AckResult.late(b_real.command_acks, b_real.command_never) == 0) + star if b_real else "—",
        )
    )
    rows.append(
        Row(
            "Ack of a button press (U1 on a finished grid), p50 / p99 / max (same burst)",
            r.cell(f"burst:{REAL}", acks("press_acks", "press_never")),
            "— (no buttons)",
            f"every one acked, p99 < {ACK_P99_GOAL_S * 1000:.0f} ms",
            ack_met(b_real, "press_acks", "press_never"),
        )
    )
    rows.append(
        Row(
            f"Button presses not acked within {scenarios.ACK_BOUND_S:g} s",
            r.cell(f"burst:{REAL}", late("press_acks", "press_never")),
            "— (no buttons)",
            "0",
            verdict(scenarios.AckResult.late(b_real.press_acks, b_real.press_never) == 0) + star if b_real else "—",
        )
    )
    if b_real or b_naive:
        text = (
            f"Interaction burst: {p.burst_tracked:,} unfinished tasks in {p.burst_channels} channels (resumed "
            f"from SQLite; adopted by the naive bot), every one polled once before the burst; then, while the "
            f"simulator moves {p.burst_churn_per_s:g} of them a step per second (up to 80%; each change a push "
            f"to this bot, which has push on; the naive bot polls every {p.poll_interval_s:g} s), "
            f"{p.burst_commands} /imagine and {p.burst_presses} presses of U1 on {p.burst_presses} grids "
            f"finished and shown before the burst arrive evenly over {p.burst_s:g} s, round-robin over the "
            f"channels (the naive bot has no buttons: /imagine only). Ack = the double's dispatch of "
            f"INTERACTION_CREATE on the gateway -> arrival of the bot's first callback (defer or answer); "
            f'"never": no callback {scenarios.ACK_WAIT_S:g} s after the burst. p99 is nearest rank.'
        )
        for label, v in ((LABELS[REAL], b_real), (LABELS[NAIVE], b_naive)):
            if v is None:
                continue
            text += (
                f" {label.capitalize()}: the burst took {v.burst_s:.2f} s to send, {v.advances:,} task steps "
                f"meanwhile"
                + (f", {v.pushes:,} pushes delivered" if v.pushes else "")
                + f"; the benchmark process's own loop (the double and the simulator) lagged up to "
                f"{v.bench_lag_s * 1000:.0f} ms, which the ack figures include."
            )
            text += "".join(f" ({note})" for note in v.notes)
        notes.append(text)

    # 3d. correct under load (issue 12, item 5)
    load_real, load_naive = r.get(f"load:{REAL}"), r.get(f"load:{NAIVE}")

    def faults(v: scenarios.LoadResult) -> str:
        return f"{v.duplicates} / {v.given_up} / {v.stale}"

    rows.append(
        Row(
            f"{p.load_jobs:,} /imagine in {p.load_send_s:g} s over {p.load_channels} channels: "
            f"jobs with 2 messages / messages given up / stale at the end",
            r.cell(f"load:{REAL}", faults),
            r.cell(f"load:{NAIVE}", faults),
            "0 / 0 / 0",
            verdict(load_real.duplicates == load_real.given_up == load_real.stale == 0) + star if load_real else "—",
        )
    )
    if load_real:
        text = (
            f"Load: {p.load_jobs:,} /imagine sent evenly over {p.load_send_s:g} s, round-robin over "
            f"{p.load_channels} channels and two members; the simulator runs every task on its clock (1 s per "
            f"step ±{p.jitter:.0%}); push on for this bot with every delivery sent twice, polling every 1 s "
            f"for both. Counted once every task had finished at the proxy and every final image was shown, "
            f"or {p.load_settle_s:g} s later: jobs with more than one public message, messages the bot gave "
            f'up ("no more updates" in its log), messages not showing the final image.'
        )
        for label, v in ((LABELS[REAL], load_real), (LABELS[NAIVE], load_naive)):
            if v is not None:
                text += (
                    f" {label.capitalize()}: {v.submitted:,} tasks submitted, counted after {v.waited_s:.0f} s"
                    + "".join(f" ({note})" for note in v.notes)
                    + "."
                )
        notes.append(text)

    # 4. CPU and memory
    cpu_real, cpu_naive = r.get(f"cpu:{REAL}"), r.get(f"cpu:{NAIVE}")
    rows.append(
        Row(
            "CPU seconds of the bot per 1,000 task updates",
            r.cell(f"cpu:{REAL}", lambda v: f"{v.per_thousand:.2f} s"),
            r.cell(f"cpu:{NAIVE}", lambda v: f"{v.per_thousand:.2f} s"),
            "≤ naive",
            verdict(cpu_real.per_thousand <= cpu_naive.per_thousand) + star if cpu_real and cpu_naive else "—",
        )
    )
    if cpu_real and cpu_naive:
        notes.append(
            f"CPU: {p.cpu_tasks} unfinished tasks, one per channel, each moved 10% -> 40% -> 80% -> SUCCESS "
            f"({cpu_real.updates:,} updates), the next step only once the bot has polled every task since; poll "
            f"interval {p.cpu_interval_s} s for both; utime + stime of the bot process from the first step to the "
            f"last final image on Discord (this bot {cpu_real.phase_s:.1f} s, {cpu_real.discord_writes} Discord "
            f"writes; naive {cpu_naive.phase_s:.1f} s, {cpu_naive.discord_writes} writes)."
        )
    mem_real, mem_naive = r.get(f"memory:{REAL}"), r.get(f"memory:{NAIVE}")
    n = p.memory_tasks
    rows.append(
        Row(
            f"RSS with {n:,} unfinished tasks",
            r.cell(f"memory:{REAL}", lambda v: f"{v.rss_mb:.0f} MB"),
            r.cell(f"memory:{NAIVE}", lambda v: f"{v.rss_mb:.0f} MB"),
            f"< {RSS_GOAL_MB:.0f} MB",
            verdict(mem_real.rss_mb < RSS_GOAL_MB) + star if mem_real else "—",
        )
    )
    rows.append(
        Row(
            f"Start -> first tick covering {n:,} tasks resumed from SQLite",
            r.cell(f"memory:{REAL}", lambda v: seconds(v.resume_s)),
            "— (cannot resume)",
            f"< {RESUME_GOAL_S:g} s",
            verdict(mem_real.resume_s < RESUME_GOAL_S) + star if mem_real else "—",
        )
    )
    if mem_real:
        text = (
            f"Resume: {n:,} unfinished jobs in SQLite (messages up to date), poll interval "
            f"{p.poll_interval_s:g} s; timed from spawning `python -m bot run` (interpreter start, imports, "
            f"config, Discord REST login and slash-command sync with the double, opening SQLite and loading "
            f"the jobs) to the arrival at the proxy of the last list-by-condition request of the first tick "
            f"covering all {n:,}; the gateway connection is made meanwhile and not waited for (logged in "
            f"after {seconds(mem_real.logged_in_s)}, first task request after "
            f"{seconds(mem_real.first_request_s)})."
        )
        if mem_real.rewritten_at_resume:
            text += f" Warning: that tick rewrote {mem_real.rewritten_at_resume} seeded jobs in SQLite."
        notes.append(text)
    if mem_real and mem_naive:
        notes.append(
            f"RSS: VmRSS once every task had been polled twice (the first round fully processed); peak "
            f"(VmHWM) this bot {mem_real.peak_mb:.0f} MB, naive {mem_naive.peak_mb:.0f} MB (one coroutine per "
            f"task, adopted with --adopt: it has no database)."
        )

    # 5. event-loop lag, in each scenario (issue 12, item 4)
    def lag(v: Any) -> str:
        return v.loop_lag.text() if getattr(v, "loop_lag", None) is not None else "—"

    def lag_pair(key_a: str, key_b: str, names: tuple[str, str]) -> str:
        parts = [f"{name} {r.cell(key, lag)}" for key, name in ((key_a, names[0]), (key_b, names[1]))]
        return ", ".join(parts)

    lag_rows = [
        (
            f"requests per tick, {biggest:,} tasks",
            r.cell(f"ticks:{REAL}:{biggest}", lag),
            r.cell(f"ticks:{NAIVE}:{biggest}", lag),
        ),
        (
            f"final-state latency, {p.latency_jobs} channels",
            lag_pair(f"latency:{REAL}:push", f"latency:{REAL}:polling", ("push", "polling")),
            r.cell(f"latency:{NAIVE}:polling", lag),
        ),
        (f"{p.one_channel_jobs} jobs in one channel, polling", r.cell(f"one:{REAL}", lag), r.cell(f"one:{NAIVE}", lag)),
        (
            f"{p.push_one_jobs} jobs in one channel, progress every {p.push_one_step_s:g} s",
            r.cell(f"pushone:{REAL}", lag),
            r.cell(f"pushone:{NAIVE}", lag),
        ),
        ("interaction burst (the burst only)", r.cell(f"burst:{REAL}", lag), r.cell(f"burst:{NAIVE}", lag)),
        (f"CPU per update, {p.cpu_tasks * 4:,} updates", r.cell(f"cpu:{REAL}", lag), r.cell(f"cpu:{NAIVE}", lag)),
        (f"resume and RSS, {p.memory_tasks:,} tasks", r.cell(f"memory:{REAL}", lag), r.cell(f"memory:{NAIVE}", lag)),
    ]
    for what, real_cell, naive_cell in lag_rows:
        rows.append(
            Row(f"Event-loop lag (worst delay of a 10 ms timer): {what}", real_cell, naive_cell, "reported (no target)")
        )
    notes.append(
        "Event-loop lag: each bot runs a 10 ms timer on its event loop and records how late it fires "
        "(this bot: `mjbot_event_loop_lag_seconds` and `mjbot_event_loop_lag_max_seconds` on /metrics, served at "
        "`[http] listen`; the naive bot: the same code, bench/naive_bot.py, for the benchmark only). Read from "
        "/metrics once the bot had logged in to the double and again at the end of the measurement (the burst: "
        "just before and after the burst). A plain figure is the exact worst of that phase (the worst since start "
        'grew in it); "≤" is an upper bound, the lesser of the worst before the phase and the upper edge of the '
        "highest histogram bucket the phase used (1, 2, 5, 10, 20, 50, 100, 200, 500 ms...)."
    )
    if r.errors:
        notes += [f"Error in {key}: {message}" for key, message in r.errors.items()]
    return table


def _p50_p99_max(values: list[float]) -> str:
    if not values:
        return "—"
    figures = [nearest_rank(values, 0.5), nearest_rank(values, 0.99), max(values)]
    if figures[-1] < 1.0:
        return " / ".join(f"{v * 1000:.0f}" for v in figures) + " ms"
    return " / ".join(f"{v:.2f}" for v in figures) + " s"


def scenarios_timeline() -> tuple:
    from bot.sandbox.proxy_sim import DEFAULT_TIMELINE

    return DEFAULT_TIMELINE[1:]  # the first step is taken at submission


def _finish_window(p: Profile) -> str:
    steps = len(scenarios_timeline())
    low, high = steps * p.one_channel_step_s * (1 - p.jitter), steps * p.one_channel_step_s * (1 + p.jitter)
    return f"{low:.0f}-{high:.0f} s"


def _kinds(v: scenarios.TickResult) -> str:
    lists = v.requests - v.fetches
    if not v.fetches:
        return "all list-by-condition"
    return f"{v.fetches:,} fetch" + (f" + {lists:,} list-by-condition" if lists else "")


def _median(values: list[float]) -> float:
    return sorted(values)[(len(values) - 1) // 2] if values else math.inf


def _detect(v: scenarios.LatencyResult) -> str:
    rest = [j.total_s - j.detect_s for j in v.latencies]
    return f"{spread([j.detect_s for j in v.latencies])}, the rest (image download, Discord edit) {spread(rest)}"


def _one_channel_detail(v: scenarios.LatencyResult) -> str:
    shown = len(v.latencies)
    text = (
        f"{shown} of {v.jobs} final images shown after {v.waited_s:.0f} s, {v.writes} channel writes "
        f"(bot token) and {v.webhook_writes} through interaction webhooks"
    )
    if v.latencies:
        discord = [j.total_s - j.detect_s for j in v.latencies]
        text += (
            f"; the proxy's final state reached it after {spread([j.detect_s for j in v.latencies])}, "
            f"then Discord took {spread(discord)} (p50 / p95 / max)"
        )
        behind = [j.total_s for j in v.latencies if j.posts_pending]
        others = [j.total_s for j in v.latencies if not j.posts_pending]
        if behind:
            text += (
                f"; {len(behind)} of these finals were seen while job messages were still waiting to be "
                f"posted ({spread(behind)})"
            )
            if others:
                text += f", the other {len(others)} after that ({spread(others)})"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="The benchmark: this bot against the naive way, in one table."
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, well under a minute")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"write the Markdown table here (default: {RESULTS.relative_to(RESULTS.parents[1])} for "
        "a full run, nowhere for --quick)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases, configs)")
    args = parser.parse_args(argv)
    profile = QUICK if args.quick else FULL
    command = "python -m bench.run" + (" --quick" if args.quick else "")
    started, commit = time.monotonic(), current_commit()
    workdir = Path(tempfile.mkdtemp(prefix="mjbot-bench-"))
    runner = None
    try:
        runner = asyncio.run(measure(profile, workdir))
    except KeyboardInterrupt:
        print("\ninterrupted; every bot process was stopped", file=sys.stderr)
        return 130
    finally:
        if not args.keep and (runner is None or not runner.errors):
            shutil.rmtree(workdir, ignore_errors=True)
    table = build_table(profile, runner, time.monotonic() - started, command, commit)
    print()
    print(table.text())
    markdown = table.markdown()
    if not args.quick and not runner.errors:
        # Issue 14's rows: one setup per column, so a table of their own (about 2 minutes).
        from bench import cluster

        cluster_started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="mjbot-bench-cluster-") as folder:
            setups = asyncio.run(cluster.measure_all(Path(folder), cluster.FULL))
        rows = "\n".join(cluster.lines(setups))
        print(f"\nSeveral processes (measured in {time.monotonic() - cluster_started:.0f} s):\n{rows}")
        markdown += f"\n\n### Several processes (`python -m bench.cluster`)\n\n{rows}\n"
    out = args.out if args.out is not None else (None if args.quick else RESULTS)
    if out is not None:
        out.write_text(markdown, encoding="utf-8")
        print(f"\n(written to {out})")
    if runner.errors or args.keep:
        print(f"work directory with the bots' logs: {workdir}", file=sys.stderr)
    return 1 if runner.errors else 0


if __name__ == "__main__":
    sys.exit(main())
