"""One scenario's world: a fresh proxy simulator, Discord double and database, the bots started in
it, and the bookkeeping the measurements share (seeding tasks, counting polls, reading latencies)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import re
import secrets
import socket
import statistics
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.procs import NaiveProcess, stop_all
from bot.core.models import Action, Display, Job, Status
from bot.ops.notify import TOKEN_KEY
from bot.sandbox.discord_double import DiscordDouble
from bot.sandbox.discord_double.records import MessageRecord, MessageVersion
from bot.sandbox.proxy_sim import ProxySim, RecordedRequest
from bot.storage import Store
from tests.e2e.harness import BotProcess, write_config

SECRET = "bench-proxy-secret"
SEED = 20_241_121  # the simulator's jitter: the same task timings on every run
REAL, NAIVE = "real", "naive"  # this bot, the naive way
LABELS = {REAL: "this bot", NAIVE: "naive"}
_FETCH = re.compile(r"/task/([^/]+)/fetch$")
_LIST = "/task/list-by-condition"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wall_minus_monotonic() -> float:
    """``time.time() - time.monotonic()``, to put the double's monotonic stamps on the simulator's
    wall clock (both servers run in this process, so one offset serves both)."""
    samples = []
    for _ in range(5):
        before = time.monotonic()
        wall = time.time()
        after = time.monotonic()
        samples.append(wall - (before + after) / 2)
    return statistics.median(samples)


@dataclass
class Seeded:
    task_id: str
    channel_id: int
    message_id: int
    prompt: str


@dataclass(frozen=True)
class LagSample:
    """One reading of a bot's ``/metrics``: its event-loop lag so far."""

    worst_s: float  # mjbot_event_loop_lag_max_seconds: the worst since the process started
    buckets: dict[float, float]  # cumulative histogram: upper bound -> timers that late or less
    count: float


@dataclass(frozen=True)
class LoopLag:
    """The worst delay of the bot's 10 ms timer within one phase of a scenario. ``exact``: the
    worst since start grew during the phase, so ``worst_s`` is the phase's own worst; otherwise
    ``worst_s`` is an upper bound (the lesser of the worst before the phase and the bound of the
    histogram's highest bucket used during it)."""

    worst_s: float
    exact: bool
    timers: int  # 10 ms timers that fired in the phase
    over_50ms: int  # of which, late by more than 50 ms
    since_start_s: float

    def text(self) -> str:
        figure = f"{self.worst_s * 1000:.0f} ms" if self.worst_s < 1 else f"{self.worst_s:.2f} s"
        return figure if self.exact else f"≤ {figure}"


@dataclass
class World:
    dir: Path
    dd: DiscordDouble
    sim: ProxySim
    bots: list[BotProcess] = field(default_factory=list)
    http_port: int | None = None  # where the bot serves /metrics ([http] listen)
    notify_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    notify_url: str | None = None  # the push receiver's public URL (push on)
    lag_start: LagSample | None = None  # /metrics read once the bot had logged in

    @property
    def db_path(self) -> Path:
        return self.dir / "mjbot.sqlite3"

    @property
    def notify_hook(self) -> str | None:
        """This bot's push URL with its token (known before it starts: ``start`` stores the token
        in SQLite), for tasks the simulator holds without a hook of their own."""
        return f"{self.notify_url}/{self.notify_token}" if self.notify_url else None

    def config(self, *, poll_interval_s: float, push: bool = False) -> Path:
        self.http_port = free_port()
        extra = f'[http]\nlisten = "127.0.0.1:{self.http_port}"\n'
        if push:
            port = free_port()
            self.notify_url = f"http://127.0.0.1:{port}/mj/notify"
            extra += f'[notify]\nlisten = "127.0.0.1:{port}"\npublic_url = "{self.notify_url}"\n'
        return write_config(
            self.dir / "config.toml",
            self.dd,
            self.sim,
            self.db_path,
            secret=SECRET,
            poll_interval_s=poll_interval_s,
            extra=extra,
        )

    async def start(self, kind: str, config: Path, *, adopt: Path | None = None) -> BotProcess:
        """Start this bot or the naive one; returns once it has logged in to the double (and its
        /metrics has been read once: the start of the loop-lag phase)."""
        if kind == REAL and self.notify_url:
            store = Store(self.db_path)
            await store.open()
            try:
                await store.set_meta(TOKEN_KEY, self.notify_token)
            finally:
                await store.close()
        log_path = self.dir / ("bot.log" if kind == REAL else "naive.log")
        bot = BotProcess(config, log_path) if kind == REAL else NaiveProcess(config, log_path, adopt)
        self.bots.append(bot)
        await bot.start(self.dd)
        self.lag_start = await self.scrape_lag()
        return bot

    async def scrape_lag(self) -> LagSample | None:
        """The bot's loop lag so far, from its /metrics; None when it serves none."""
        if self.http_port is None:
            return None
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        text = ""
        for attempt in range(20):  # the server may come up just after the gateway login
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                    async with session.get(url) as response:
                        text = await response.text()
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1 * (attempt + 1))  # bounded retry of a connection refused
        worst, count, buckets = None, 0.0, {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "mjbot_event_loop_lag_max_seconds":
                    worst = sample.value
                elif sample.name == "mjbot_event_loop_lag_seconds_bucket":
                    buckets[float(sample.labels["le"])] = sample.value
                elif sample.name == "mjbot_event_loop_lag_seconds_count":
                    count = sample.value
        if worst is None:
            return None
        return LagSample(worst, buckets, count)

    async def loop_lag(self, since: LagSample | None = None) -> LoopLag | None:
        """The bot's worst loop lag from ``since`` (default: its login) to now."""
        start = since or self.lag_start
        end = await self.scrape_lag()
        if start is None or end is None:
            return None
        delta = {bound: end.buckets.get(bound, 0) - start.buckets.get(bound, 0) for bound in end.buckets}
        timers = end.count - start.count
        over_50ms = timers - delta.get(0.05, timers)
        if end.worst_s > start.worst_s:
            return LoopLag(end.worst_s, True, int(timers), int(over_50ms), end.worst_s)
        below = [bound for bound, n in sorted(delta.items()) if n >= timers]  # every timer of the phase
        bound = below[0] if below else math.inf
        return LoopLag(min(bound, start.worst_s), False, int(timers), int(over_50ms), end.worst_s)

    async def seed(self, count: int, channel_ids: list[int], kind: str) -> list[Seeded]:
        """``count`` unfinished tasks (SUBMITTED 0%, held still: the simulator is in manual mode),
        each with its bot-authored job message in the double, spread over ``channel_ids``; known
        to this bot as jobs in its SQLite file, or to the naive one through an ``--adopt`` file
        (``self.dir / "adopt.jsonl"``). Both start out showing exactly what the proxy says, so
        adopting them edits nothing."""
        owner = self.dd.member_id
        seeded = []
        for n in range(count):
            prompt = f"bench task {n}"
            task = self.sim.add_task(prompt)
            channel_id = channel_ids[n % len(channel_ids)]
            message = await self.dd.state.create_message(
                channel_id=channel_id,
                author_id=self.dd.bot_id,
                via="bot",
                files=[],
                payload={"content": f"**{prompt}** - <@{owner}> (Waiting to start)"},
            )
            seeded.append(Seeded(task.id, channel_id, message.id, prompt))
        if kind == REAL:
            await self._store_jobs(seeded, owner)
        else:
            with (self.dir / "adopt.jsonl").open("w", encoding="utf-8") as adopt:
                for job in seeded:
                    task = self.sim.tasks[job.task_id]
                    adopt.write(
                        json.dumps(
                            {
                                "task_id": job.task_id,
                                "channel_id": job.channel_id,
                                "message_id": job.message_id,
                                "prompt": job.prompt,
                                "owner_id": owner,
                                "status": task.status,
                                "progress": task.progress,
                                "image_url": task.image_url,
                            }
                        )
                        + "\n"
                    )
        return seeded

    async def _store_jobs(self, seeded: list[Seeded], owner: int) -> None:
        store = Store(self.db_path)
        await store.open()
        now = time.time()
        # The fields the bot keeps from the proxy's answer, so the first poll changes nothing.
        known = {f.name for f in dataclasses.fields(Job)}
        try:
            for item in seeded:
                task = self.sim.tasks[item.task_id]
                extra: dict[str, Any] = {}
                if "final_prompt" in known:
                    extra["final_prompt"] = task.final_prompt
                job = Job(
                    task_id=item.task_id,
                    action=Action.IMAGINE,
                    prompt=item.prompt,
                    owner_id=owner,
                    channel_id=item.channel_id,
                    guild_id=self.dd.guild_id,
                    message_id=item.message_id,
                    status=Status(task.status),
                    progress=task.progress,
                    prompt_en=task.prompt_en,
                    created_at=now,
                    updated_at=now,
                    **extra,
                )
                await store.insert_job(job.with_changes(shown=Display.of(job).signature()))
        finally:
            await store.close()

    def bot_messages(self, channel_id: int | None = None) -> list[MessageRecord]:
        """The public job messages of the bot: posted with the bot token or as an interaction's
        follow-up (``**prompt** - ...``; not the ephemeral acknowledgements)."""
        return [
            m
            for m in self.dd.messages.values()
            if m.author_id == self.dd.bot_id
            and m.origin in ("bot", "interaction")
            and not m.ephemeral
            and m.first.content.startswith("**")
            and (channel_id is None or m.channel_id == channel_id)
        ]

    def webhook_writes(self) -> int:
        """Message writes through interaction webhooks (follow-ups and their edits, deleting the
        acknowledgement): not counted against a channel's 5 writes per 5 s."""
        return sum(
            1 for r in self.dd.requests if r.path.startswith("/webhooks/") and r.method in ("POST", "PATCH", "DELETE")
        )

    def finals_shown(self, channel_id: int | None = None) -> int:
        return sum(1 for m in self.bot_messages(channel_id) if m.current.attachments)


@contextlib.asynccontextmanager
async def world(workdir: Path, name: str, *, channels: int, **sim_options: Any) -> AsyncIterator[World]:
    """Fresh servers and a fresh directory (database, config, logs); every bot started in it is
    stopped on the way out, before the servers, also on errors and Ctrl-C."""
    directory = workdir / name
    directory.mkdir(parents=True)
    async with contextlib.AsyncExitStack() as stack:
        dd = await stack.enter_async_context(DiscordDouble(text_channels=channels))
        sim = await stack.enter_async_context(ProxySim(secret=SECRET, seed=SEED, **sim_options))
        here = World(directory, dd, sim)
        try:
            yield here
        finally:
            await stop_all(here.bots)


def task_ids_asked(request: RecordedRequest) -> list[str] | None:
    """The task ids a proxy request asked about, or None when it is not a task request."""
    if request.path.endswith(_LIST):
        ids = request.json.get("ids") if isinstance(request.json, dict) else None
        return [str(i) for i in ids or []]
    match = _FETCH.search(request.path)
    return [match.group(1)] if match else None


class PollCounter:
    """How often each task was asked about, read incrementally from the simulator's request log.

    ``round_at[k]`` is the wall-clock time (the simulator's ``time.time()`` on arrival) of the
    request that made every task asked about at least ``k`` times; ``requests`` counts the task
    requests (``list-by-condition`` and ``/task/{id}/fetch``) seen, ``fetches`` the latter."""

    def __init__(self, sim: ProxySim, ids: Iterable[str], *, start: int = 0) -> None:
        self.sim = sim
        self.polls = dict.fromkeys(ids, 0)
        self.first_poll: dict[str, float] = {}
        self.last_poll: dict[str, float] = {}
        self.index = start
        self.requests = 0
        self.fetches = 0  # of which /task/{id}/fetch (the rest: list-by-condition)
        self.first_at: float | None = None
        self.round_at: dict[int, float] = {}
        self._at_least: dict[int, int] = {}

    def update(self, stop: int | None = None) -> PollCounter:
        log = self.sim.requests
        end = len(log) if stop is None else stop
        while self.index < end:
            request = log[self.index]
            self.index += 1
            asked = task_ids_asked(request)
            if asked is None:
                continue
            self.requests += 1
            self.fetches += not request.path.endswith(_LIST)
            if self.first_at is None:
                self.first_at = request.time
            for task_id in asked:
                count = self.polls.get(task_id)
                if count is None:
                    continue
                count += 1
                self.polls[task_id] = count
                self.first_poll.setdefault(task_id, request.time)
                self.last_poll[task_id] = request.time
                reached = self._at_least[count] = self._at_least.get(count, 0) + 1
                if reached == len(self.polls):
                    self.round_at[count] = request.time
        return self

    @property
    def rounds(self) -> int:
        """Full rounds so far: every task asked about at least this many times."""
        return max(self.round_at, default=0)

    @property
    def mean_polls(self) -> float:
        return sum(self.polls.values()) / len(self.polls) if self.polls else 0.0

    @property
    def mean_period_s(self) -> float:
        """Mean time between two polls of the same task (tasks polled at least twice)."""
        periods = [(self.last_poll[i] - self.first_poll[i]) / (n - 1) for i, n in self.polls.items() if n >= 2]
        return sum(periods) / len(periods) if periods else float("nan")


def first_final(message: MessageRecord) -> MessageVersion | None:
    """The first version of a job message that carries the final image as an attachment."""
    return next((version for version in message.versions if version.attachments), None)


@dataclass
class JobLatency:
    task_id: str
    total_s: float  # proxy final state -> first Discord version with the final image attached
    detect_s: float  # proxy final state -> the first poll answer or push that could tell the bot
    posts_pending: bool  # the bot saw the final while job messages were still waiting to be posted


def final_latencies(w: World, channel_id: int | None = None) -> list[JobLatency]:
    """For every finished task whose final image is on Discord: seconds from its final state at the
    proxy (``SimTask.finished_at``) to the double's first version of its message with the image
    attached, split at the moment the bot could first know (the first task request after the
    final state, or the push of it)."""
    offset = wall_minus_monotonic()
    by_prompt = {task.prompt: task for task in w.sim.tasks.values()}
    messages = w.bot_messages(channel_id)
    last_post = max((m.first.at + offset for m in messages), default=0.0)
    finished = {t.id: t.finished_at for t in w.sim.tasks.values() if t.finished_at is not None}
    seen: dict[str, float] = {}
    for request in w.sim.requests:
        for task_id in task_ids_asked(request) or ():
            done = finished.get(task_id)
            if done is not None and task_id not in seen and request.time >= done:
                seen[task_id] = request.time
    for delivery in w.sim.deliveries:
        if delivery.ok and delivery.status in ("SUCCESS", "FAILURE"):
            seen[delivery.task_id] = min(seen.get(delivery.task_id, delivery.at), delivery.at)
    result = []
    for message in messages:
        prompt = message.first.content.split("**")[1] if message.first.content.startswith("**") else ""
        task = by_prompt.get(prompt)
        version = first_final(message)
        if task is None or task.finished_at is None or version is None:
            continue
        shown_at = version.at + offset
        known_at = seen.get(task.id, shown_at)
        result.append(
            JobLatency(
                task.id, shown_at - task.finished_at, known_at - task.finished_at, posts_pending=known_at < last_post
            )
        )
    return result


class LocalLag:
    """The benchmark process's own loop lag, the same 10 ms timer as the bots': the double and the
    simulator run in this process, so their timestamps are late by as much as it is busy."""

    def __init__(self, interval_s: float = 0.010) -> None:
        self.interval_s = interval_s
        self.worst_s = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval_s)
            self.worst_s = max(self.worst_s, loop.time() - started - self.interval_s)

    async def __aenter__(self) -> LocalLag:
        self._task = asyncio.create_task(self._run(), name="bench-loop-lag")
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
